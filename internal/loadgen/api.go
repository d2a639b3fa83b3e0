package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/subscription"
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
	// NetHTTP calls through net/http's client instead of the load tool's
	// own keep-alive client (apiGetter), which costs the shared machine
	// less CPU per request.
	NetHTTP bool
	// Server, when set, is the API process: its CPU time per check is the
	// result's CPUPerRequest. The load client's own CPU time (this process)
	// is always its ClientCPUPerRequest.
	Server cpuMeter
}

// RunAccessAPI calls GET /v1/customers/{customer}/access/{content} through
// the API. A 200 counts as success, under the access type it answers
// ("none" when the customer never had a grant); anything else is an error
// under its status.
func RunAccessAPI(ctx context.Context, cfg AccessConfig) (Result, error) {
	if len(cfg.Customers) == 0 {
		return Result{}, errors.New("loadgen: no customers to check")
	}
	paths := make([]string, len(cfg.Customers))
	for i, c := range cfg.Customers {
		paths[i] = "/v1/customers/" + c + "/access/" + cfg.ContentID
	}
	return runAPILoad(ctx, "api", cfg, paths, accessLabel)
}

// accessLabel names a 200 answer of the access check by its access_type.
func accessLabel(status int, body []byte) (string, bool) {
	if status != http.StatusOK {
		return strconv.Itoa(status), false
	}
	const key = `"access_type":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return "200 without access_type", false
	}
	rest := body[i+len(key):]
	if bytes.HasPrefix(rest, []byte("null")) {
		return accessNone, true
	}
	if len(rest) < 2 || rest[0] != '"' {
		return "200 with a malformed access_type", false
	}
	typ, _, ok := bytes.Cut(rest[1:], []byte{'"'})
	if !ok {
		return "200 with a malformed access_type", false
	}
	return string(typ), true
}

// accessNone labels the answer "never granted" on both sides of the bench.
const accessNone = "none"

// runAPILoad GETs paths drawn at random through the API at cfg's
// concurrency for cfg.Duration; label names each answer and says whether it
// counts as success. It measures the load client's CPU time (this process)
// and, when cfg.Server is set, the API's.
func runAPILoad(ctx context.Context, name string, cfg AccessConfig, paths []string,
	label func(status int, body []byte) (string, bool)) (Result, error) {
	get, closeClient, err := apiClient(cfg)
	if err != nil {
		return Result{}, err
	}
	defer closeClient()
	return measureCPUs(cfg.Server, func() (Result, error) {
		return drive(ctx, name, cfg.Concurrency, cfg.Duration, 0, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
			status, body, err := get(ctx, paths[rand.IntN(len(paths))], buf)
			if err != nil {
				if ctx.Err() != nil {
					return body, "", false
				}
				return body, "transport_error", false
			}
			l, ok := label(status, body)
			return body, l, ok
		})
	})
}

// apiClient returns the function that GETs one path with the bench's key
// (the status and the body, appended to buf[:0]) and the cleanup: the load
// tool's own client for http:// URLs unless cfg.NetHTTP, else net/http's.
func apiClient(cfg AccessConfig) (func(context.Context, string, []byte) (int, []byte, error), func(), error) {
	if !cfg.NetHTTP {
		if g, err := newAPIGetter(cfg.URL, cfg.Key, cfg.Concurrency); err == nil {
			return func(_ context.Context, path string, buf []byte) (int, []byte, error) { return g.get(path, buf) }, g.close, nil
		}
	}
	tr := &http.Transport{MaxIdleConns: cfg.Concurrency * 2, MaxIdleConnsPerHost: cfg.Concurrency * 2}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	auth := "Bearer " + cfg.Key
	return func(ctx context.Context, path string, buf []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+path, nil)
		if err != nil {
			return 0, buf, err
		}
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			return 0, buf, err
		}
		defer res.Body.Close()
		w := bytes.NewBuffer(buf[:0])
		_, err = io.Copy(w, res.Body)
		return res.StatusCode, w.Bytes(), err
	}, tr.CloseIdleConnections, nil
}

// RunAccessSQL runs the access route's statement (subscription.AccessQuery:
// $1 customer, $2 content, $3 now) directly on pool with the same
// concurrency, and decides each row as the route does
// (subscription.ScanAccess): the physical baseline of an access check, one
// round trip like the route's. Answers are counted under the access type
// decided, as RunAccessAPI counts the API's. The result's
// ClientCPUPerRequest is this process's CPU time per query (the pgx client).
func RunAccessSQL(ctx context.Context, pool *pgxpool.Pool, cfg AccessConfig) (Result, error) {
	if len(cfg.Customers) == 0 {
		return Result{}, errors.New("loadgen: no customers to check")
	}
	cid, err := uuid.Parse(cfg.ContentID)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: content id: %w", err)
	}
	content := pgtype.UUID{Bytes: cid, Valid: true}
	return measureCPUs(cpuMeter{}, func() (Result, error) {
		return drive(ctx, "direct-sql", cfg.Concurrency, cfg.Duration, 0, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
			c := cfg.Customers[rand.IntN(len(cfg.Customers))]
			acc, err := subscription.ScanAccess(pool.QueryRow(ctx, subscription.AccessQuery, c, content, time.Now()).Scan)
			switch {
			case ctx.Err() != nil:
				return buf, "", false
			case err != nil:
				return buf, fmt.Sprintf("error: %v", err), false
			case !acc.Found:
				return buf, accessNone, true
			}
			return buf, acc.Type, true
		})
	})
}

// SeedAccess gives n customers (bench_cust_1…n) access to p's content,
// the way the processor and other systems write content_access and
// subscriptions, so the access check meets every answer it gives:
//   - the first half through completed purchases of p (its price, split and
//     agreements, as SeedDemo returns them); every fourth of them also has
//     an active subscription, and the purchase wins;
//   - the next tenth through complimentary grants;
//   - the rest through a subscription alone, to a plan of p's creator: the
//     access subscription.AccessQuery finds in subscriptions, not in
//     content_access; every fifth is past_due within its grace period.
//
// It returns those customers plus n/10 who have no access (bench_stranger_…;
// every other one has a canceled subscription), so the run also measures the
// "none" answer.
func SeedAccess(ctx context.Context, db bun.IDB, p Purchase, n int) ([]string, error) {
	half, comp := n/2, n/10
	content, org := p.ContentID.String(), p.OrganizationID.String()
	plan := uuid.New()
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
		  SELECT 'bench_cust_' || i, ?, ?, 'complimentary' FROM generate_series(?, ?) AS i`, []any{content, org, half + 1, half + comp}},
		{`INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
		  VALUES (?, ?, ?, 'Bench membership', 999, ?, 'month')`, []any{plan, org, p.CreatorID, p.Currency}},
		{`INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end,
			started_at, past_due_since, access_until, event_created, last_event_id)
		  SELECT 'sub_bench_' || i, 'bench_cust_' || i, ?, CASE WHEN i % 5 = 0 THEN 'past_due' ELSE 'active' END,
			now() - interval '20 days', now() + interval '10 days', now() - interval '50 days',
			CASE WHEN i % 5 = 0 THEN now() - interval '1 day' END,
			now() + CASE WHEN i % 5 = 0 THEN interval '2 days' ELSE interval '10 days' END,
			now() - interval '20 days', 'evt_bench_' || i
		  FROM generate_series(1, ?) AS i WHERE (i <= ? AND i % 4 = 0) OR i > ?`, []any{plan, n, half, half + comp}},
		{`INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end,
			started_at, canceled_at, ended_at, event_created, last_event_id)
		  SELECT 'sub_bench_stranger_' || i, 'bench_stranger_' || i, ?, 'canceled',
			now() - interval '60 days', now() - interval '30 days', now() - interval '60 days',
			now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', 'evt_bench_stranger_' || i
		  FROM generate_series(1, ?) AS i WHERE i % 2 = 1`, []any{plan, n / 10}},
		{`ANALYZE purchases, content_access, subscription_plans, subscriptions`, nil},
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
