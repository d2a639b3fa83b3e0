package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"
)

// AccessConfig shapes an access-check run: Concurrency callers for Duration,
// each call for a customer drawn at random from Customers.
type AccessConfig struct {
	URL         string // purchase API base URL, e.g. http://127.0.0.1:8081
	Key         string // bearer key
	ContentID   string
	Customers   []string
	Concurrency int
	Duration    time.Duration
	Progress    io.Writer // live progress line; nil = quiet
}

// RunAccessAPI calls GET /v1/customers/{customer}/access/{content} through
// the API. A 200 counts as success; anything else as an error.
func RunAccessAPI(ctx context.Context, cfg AccessConfig) (Result, error) {
	if len(cfg.Customers) == 0 {
		return Result{}, errors.New("loadgen: no customers to check")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	return drive(ctx, "api", cfg.Concurrency, cfg.Duration, 0, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
		c := cfg.Customers[rand.IntN(len(cfg.Customers))]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+"/v1/customers/"+c+"/access/"+cfg.ContentID, nil)
		if err != nil {
			return buf, "error", false
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Key)
		res, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return buf, "", false
			}
			return buf, "error", false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return buf, strconv.Itoa(res.StatusCode), res.StatusCode == http.StatusOK
	})
}

// RunAccessSQL runs query (the API's access query, $1 customer, $2 content,
// $3 now) directly on pool with the same concurrency: the physical baseline
// of an access check.
func RunAccessSQL(ctx context.Context, pool *pgxpool.Pool, query string, cfg AccessConfig) (Result, error) {
	if len(cfg.Customers) == 0 {
		return Result{}, errors.New("loadgen: no customers to check")
	}
	return drive(ctx, "direct-sql", cfg.Concurrency, cfg.Duration, 0, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
		c := cfg.Customers[rand.IntN(len(cfg.Customers))]
		var (
			typ, status      *string
			pid              *[16]byte
			granted          time.Time
			expires, revoked *time.Time
			active           bool
		)
		err := pool.QueryRow(ctx, query, c, cfg.ContentID, time.Now()).Scan(&typ, &pid, &status, &granted, &expires, &revoked, &active)
		switch {
		case ctx.Err() != nil:
			return buf, "", false
		case errors.Is(err, pgx.ErrNoRows):
			return buf, "no_row", true
		case err != nil:
			return buf, fmt.Sprintf("error: %v", err), false
		}
		return buf, "row", true
	})
}

// SeedAccess gives n customers (bench_cust_1…n) access to p's content: the
// first half through completed purchases of p (its price, split and
// agreements, as SeedDemo returns them), the rest through complimentary
// grants, the way the processor and other systems write content_access. It
// returns those customers plus n/10 who never had access, so the run also
// measures the no-row answer.
func SeedAccess(ctx context.Context, db bun.IDB, p Purchase, n int) ([]string, error) {
	half := n / 2
	content, org := p.ContentID.String(), p.OrganizationID.String()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
			platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
			platform_agreement_id, creator_org_agreement_id, stripe_checkout_session_id, status, purchased_at)
		  SELECT gen_random_uuid(), 'bench_cust_' || i, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'cs_bench_' || i, 'completed', now()
		  FROM generate_series(1, ?) AS i`, []any{content, org, p.Amount, p.Currency, p.PlatformFee, p.OrgFee, p.Creator,
			p.PlatformBps, p.OrgBps, p.PlatformAgreement, p.CreatorOrg, half}},
		{`INSERT INTO content_access (user_id, content_id, organization_id, access_type, purchase_id)
		  SELECT customer_id, content_id, organization_id, 'purchased', id FROM purchases WHERE stripe_checkout_session_id LIKE 'cs_bench_%'`, nil},
		{`INSERT INTO content_access (user_id, content_id, organization_id, access_type)
		  SELECT 'bench_cust_' || i, ?, ?, 'complimentary' FROM generate_series(?, ?) AS i`, []any{content, org, half + 1, n}},
		{`ANALYZE purchases, content_access`, nil},
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st.q, st.args...); err != nil {
			return nil, fmt.Errorf("loadgen: seed access: %w", err)
		}
	}
	customers := make([]string, 0, n+n/10)
	for i := 1; i <= n; i++ {
		customers = append(customers, "bench_cust_"+strconv.Itoa(i))
	}
	for i := 1; i <= n/10; i++ {
		customers = append(customers, "bench_stranger_"+strconv.Itoa(i))
	}
	return customers, nil
}
