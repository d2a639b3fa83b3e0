package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/model"
)

// Payee is one payee the payee bench reads: GET /v1/payees/{Kind}/{ID}.
type Payee struct {
	Kind, ID string
}

// Sizes of SeedLedger's world.
const (
	ledgerHotCreators  = 16   // the measured creators, each with many entries
	ledgerColdCreators = 5000 // the rest of the ledger's creators
)

// LedgerSeed is what SeedLedger wrote.
type LedgerSeed struct {
	Purchases int     // completed purchases, each with its sale posting
	Entries   int     // ledger entries in all
	Hot       []Payee // the measured payees: the hot creators and the organization
}

// SeedLedger fills the ledger with at least entries ledger entries, as
// valid as the processor would leave them (`paystream ledger verify`
// passes): completed purchases of p, each with its sale posting (the
// amount leaves the platform's stripe_clearing, each party's share goes to
// its pending account, as ledger.PurchaseCompleted posts it), half of them
// sold by ledgerHotCreators creators with onboarded payee rows and the
// rest by ledgerColdCreators others, all in p's organization. It writes
// set-based statements (INSERT … SELECT over generate_series) in one
// transaction, so the zero-sum constraint trigger checks every posting at
// the commit; each entry's balance_after and account_version are the
// running sum and count of its account in posting order, and the stored
// balances and versions are then set from the entries. The measured payees
// are the hot creators and the organization (whose pending account holds
// an entry of every sale).
func SeedLedger(ctx context.Context, db *bun.DB, p Purchase, entries int) (LedgerSeed, error) {
	perSale := 0
	for _, x := range []int64{p.Amount, p.PlatformFee, p.OrgFee, p.Creator} {
		if x != 0 {
			perSale++
		}
	}
	if entries < 1 || perSale < 2 {
		return LedgerSeed{}, fmt.Errorf("loadgen: seed ledger: %d entries of %d per sale", entries, perSale)
	}
	n := (entries + perSale - 1) / perSale
	org := p.OrganizationID.String()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO purchases (id, customer_id, content_id, organization_id, creator_id, amount_paid_cents, currency,
			platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
			platform_agreement_id, creator_org_agreement_id, stripe_checkout_session_id, status, purchased_at)
		  SELECT gen_random_uuid(), 'bench_buyer_' || i, ?, ?,
			CASE WHEN i % 2 = 0 THEN 'bench_hot_' || (i / 2 % ?) ELSE 'bench_creator_' || (i % ?) END,
			?, ?, ?, ?, ?, ?, ?, ?, ?, 'cs_ledger_' || i, 'completed', now() - interval '1 day' + i * interval '1 microsecond'
		  FROM generate_series(1, ?) AS i`, []any{p.ContentID, org, ledgerHotCreators, ledgerColdCreators,
			p.Amount, p.Currency, p.PlatformFee, p.OrgFee, p.Creator, p.PlatformBps, p.OrgBps, p.PlatformAgreement, p.CreatorOrg, n}},
		{`INSERT INTO ledger_transactions (idempotency_key, cause, purchase_id, amount_cents, effective_at)
		  SELECT 'purchase:' || id, 'purchase', id, amount_paid_cents, purchased_at
		  FROM purchases WHERE stripe_checkout_session_id LIKE 'cs_ledger_%' ORDER BY purchased_at`, nil},
		// Each sale's moves, as PurchaseCompleted makes them.
		{`CREATE TEMP TABLE bench_moves ON COMMIT DROP AS
		  SELECT t.id AS transaction_id, m.owner, p.currency, m.kind, m.amount
		  FROM ledger_transactions t
		  JOIN purchases p ON p.id = t.purchase_id
		  CROSS JOIN LATERAL (VALUES
			('platform', 'stripe_clearing', -p.amount_paid_cents),
			('platform', 'pending', p.platform_fee_cents),
			('organization:' || p.organization_id, 'pending', p.organization_fee_cents),
			('creator:' || p.creator_id, 'pending', p.creator_payout_cents)) AS m(owner, kind, amount)
		  WHERE t.cause = 'purchase' AND m.amount <> 0`, nil},
		{`INSERT INTO ledger_accounts (owner, currency, kind)
		  SELECT DISTINCT owner, currency, kind FROM bench_moves ORDER BY 1, 2, 3
		  ON CONFLICT (owner, currency, kind) DO NOTHING`, nil},
		{`INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, account_version)
		  SELECT m.transaction_id, a.id, m.amount,
			a.balance + sum(m.amount) OVER w, a.version + row_number() OVER w
		  FROM bench_moves m
		  JOIN ledger_accounts a ON a.owner = m.owner AND a.currency = m.currency AND a.kind = m.kind
		  WINDOW w AS (PARTITION BY a.id ORDER BY m.transaction_id)
		  ORDER BY m.transaction_id, a.id`, nil},
		{`UPDATE ledger_accounts a SET balance = s.total, version = s.n, updated_at = now()
		  FROM (SELECT account_id, sum(amount) AS total, count(*) AS n FROM ledger_entries GROUP BY account_id) s
		  WHERE s.account_id = a.id AND (a.balance, a.version) IS DISTINCT FROM (s.total, s.n)`, nil},
		{`INSERT INTO payees (kind, id, stripe_account_id, charges_enabled, payouts_enabled)
		  SELECT 'creator', 'bench_hot_' || i, 'acct_bench_hot_' || i, true, true FROM generate_series(0, ? - 1) AS i
		  UNION ALL SELECT 'organization', ?, 'acct_bench_org', true, true`, []any{ledgerHotCreators, org}},
	}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				return err
			}
		}
		// The zero-sum trigger runs once per entry at the commit, with plans
		// made for the tables as their statistics describe them: empty, in a
		// fresh database. With statistics of the loaded tables its checks
		// plan for what is there, and the commit is many times faster.
		_, err := tx.ExecContext(ctx, `ANALYZE ledger_entries, ledger_accounts, ledger_transactions`)
		return err
	})
	if err != nil {
		return LedgerSeed{}, fmt.Errorf("loadgen: seed ledger: %w", err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE purchases, payees`); err != nil {
		return LedgerSeed{}, fmt.Errorf("loadgen: seed ledger: %w", err)
	}
	seed := LedgerSeed{Purchases: n}
	if err := db.NewRaw(`SELECT count(*) FROM ledger_entries`).Scan(ctx, &seed.Entries); err != nil {
		return LedgerSeed{}, fmt.Errorf("loadgen: seed ledger: %w", err)
	}
	for i := range ledgerHotCreators {
		seed.Hot = append(seed.Hot, Payee{Kind: model.PayeeCreator, ID: "bench_hot_" + strconv.Itoa(i)})
	}
	seed.Hot = append(seed.Hot, Payee{Kind: model.PayeeOrganization, ID: org})
	return seed, nil
}

// RunPayeeAPI calls GET /v1/payees/{kind}/{id} through the API for payees
// drawn at random. A 200 counts as success.
func RunPayeeAPI(ctx context.Context, cfg AccessConfig, payees []Payee) (Result, error) {
	if len(payees) == 0 {
		return Result{}, errors.New("loadgen: no payees to read")
	}
	paths := make([]string, len(payees))
	for i, p := range payees {
		paths[i] = "/v1/payees/" + p.Kind + "/" + p.ID
	}
	return runAPILoad(ctx, "api", cfg, paths, func(status int, _ []byte) (string, bool) {
		return strconv.Itoa(status), status == http.StatusOK
	})
}

// PayeeRowQuery renders the statement the payee route reads the payee's
// row with (Bun's select of model.Payee by kind and id), with $1 and $2
// where the route's values go, so the baseline sends the route's SQL.
func PayeeRowQuery(db bun.IDB) string {
	return db.NewSelect().Model((*model.Payee)(nil)).
		Where("kind = ? AND id = ?", bun.Safe("$1"), bun.Safe("$2")).String()
}

// RunPayeeSQL runs what the payee route runs, directly on pool with the
// same concurrency and the same two round trips: the payee's row
// (rowQuery, from PayeeRowQuery) and its stored balances
// (api.PayeeBalancesQuery). An answer counts under "payee" when the payee
// has a row or a balance, else "unknown" (the route's 404), an error.
func RunPayeeSQL(ctx context.Context, pool *pgxpool.Pool, rowQuery string, cfg AccessConfig, payees []Payee) (Result, error) {
	if len(payees) == 0 {
		return Result{}, errors.New("loadgen: no payees to read")
	}
	owners := make([]string, len(payees))
	for i, p := range payees {
		o, err := ledger.PayeeOwner(p.Kind, p.ID)
		if err != nil {
			return Result{}, err
		}
		owners[i] = o
	}
	return measureCPUs(cpuMeter{}, func() (Result, error) {
		return drive(ctx, "direct-sql", cfg.Concurrency, cfg.Duration, 0, cfg.Progress, func(ctx context.Context, buf []byte) ([]byte, string, bool) {
			i := rand.IntN(len(payees))
			found, err := payeeSQL(ctx, pool, rowQuery, payees[i], owners[i])
			switch {
			case ctx.Err() != nil:
				return buf, "", false
			case err != nil:
				return buf, fmt.Sprintf("error: %v", err), false
			case !found:
				return buf, "unknown", false
			}
			return buf, "payee", true
		})
	})
}

// payeeSQL reads p's row and balances; found says whether either exists.
func payeeSQL(ctx context.Context, pool *pgxpool.Pool, rowQuery string, p Payee, owner string) (bool, error) {
	rows, err := pool.Query(ctx, rowQuery, p.Kind, p.ID)
	if err != nil {
		return false, err
	}
	found := false
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			rows.Close()
			return false, err
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	rows, err = pool.Query(ctx, api.PayeeBalancesQuery, owner)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var cur, kind string
		var balance int64
		if err := rows.Scan(&cur, &kind, &balance); err != nil {
			return false, err
		}
		found = true
	}
	return found, rows.Err()
}
