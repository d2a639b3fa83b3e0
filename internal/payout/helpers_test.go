package payout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// clock is the engine's clock in tests: real time plus an offset tests move.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// env is a database, a fake Stripe and the engine's clock and metrics.
type env struct {
	db      *bun.DB
	fake    *stripefake.Server
	stripe  *payout.StripeAPI
	clock   *clock
	reg     *prometheus.Registry
	metrics *payout.Metrics
	org     uuid.UUID
	log     *slog.Logger

	mu      sync.Mutex
	content map[string]uuid.UUID // creator → content id
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db, _ := testenv.DB(t)
	e := &env{db: db, fake: stripefake.New(t), clock: &clock{}, reg: prometheus.NewRegistry(),
		org: uuid.MustParse("00000000-0000-4000-8000-000000000001"), log: testLogger(t), content: map[string]uuid.UUID{}}
	e.metrics = payout.NewMetrics(e.reg)
	e.stripe = e.newStripe(t, 0, 2*time.Second)
	return e
}

// newStripe returns a client of the fake with stripe-go retrying retries
// times and each attempt bounded by timeout.
func (e *env) newStripe(t testing.TB, retries int, timeout time.Duration) *payout.StripeAPI {
	t.Helper()
	s, err := payout.NewStripe(stripeclient.Config{Key: stripefake.Key, APIBase: e.fake.URL, MaxNetworkRetries: retries,
		// Shorter than a service may configure: the fake's hangs end fast.
		HTTPClient: &http.Client{Timeout: timeout}}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PAYSTREAM_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// config is the engine's configuration in tests: the env's clock, a short
// backoff.
func (e *env) config() payout.Config {
	c := payout.DefaultConfig()
	c.Now = e.clock.Now
	c.RetryBackoff, c.MaxRetryBackoff = time.Minute, time.Hour
	return c
}

func (e *env) runner(t testing.TB, stripe payout.Transfers, opts ...payout.Option) *payout.Runner {
	t.Helper()
	if stripe == nil {
		stripe = e.stripe
	}
	r, err := payout.NewRunner(e.db, stripe, e.config(), e.metrics, e.log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run runs r once and fails the test on a run error.
func (e *env) run(t testing.TB, r *payout.Runner) payout.Summary {
	t.Helper()
	s, err := r.Run(context.Background(), payout.RunOptions{})
	if err != nil {
		t.Fatalf("run: %v (summary %+v)", err, s)
	}
	return s
}

// payee makes creator id a payee with a Stripe account the fake knows,
// payouts enabled, and returns the account id.
func (e *env) payee(t testing.TB, id string) string {
	t.Helper()
	acct := "acct_" + id
	e.fake.AddAccount(acct)
	p := model.Payee{Kind: model.PayeeCreator, ID: id, StripeAccountID: &acct, ChargesEnabled: true, PayoutsEnabled: true,
		RequirementsDue: model.JSON("[]")}
	if _, err := e.db.NewInsert().Model(&p).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return acct
}

// sale is a purchase whose whole amount is its creator's share.
type sale struct {
	row  model.Purchase
	sale ledger.Sale
}

// earn records a completed purchase giving creator cents, posts it and
// releases it, so the cents are available.
func (e *env) earn(t testing.TB, creator string, cents int64) sale {
	t.Helper()
	s := e.earnHeld(t, creator, cents)
	if _, err := ledger.ReleaseDue(context.Background(), e.db, ledger.Config{Hold: 0}, time.Now().Add(time.Hour), 100000); err != nil {
		t.Fatal(err)
	}
	return s
}

// earnHeld records and posts a purchase without releasing it.
func (e *env) earnHeld(t testing.TB, creator string, cents int64) sale {
	t.Helper()
	ctx := context.Background()
	content := e.contentOf(t, creator)
	id := uuid.Must(uuid.NewV7())
	at := time.Now().UTC().Add(-time.Minute)
	p := model.Purchase{
		ID: id, CustomerID: "u" + id.String()[:8], ContentID: content, OrganizationID: e.org, AmountPaidCents: cents,
		Currency: "usd", CreatorPayoutCents: cents, StripeCheckoutSessionID: "cs_" + id.String(),
		Status: model.PurchaseCompleted, PurchasedAt: &at, CreatorID: creator,
	}
	s, err := ledger.SaleOf(&p)
	if err != nil {
		t.Fatal(err)
	}
	err = e.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&p).Exec(ctx); err != nil {
			return err
		}
		tr, err := ledger.PurchaseCompleted(s)
		if err != nil {
			return err
		}
		_, err = ledger.Post(ctx, tx, tr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sale{row: p, sale: s}
}

// refund refunds the purchase fully, as the processor does: its row and
// the ledger's refund posting in one transaction.
func (e *env) refund(t testing.TB, s sale) {
	t.Helper()
	err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`SELECT id FROM purchases WHERE id = ? FOR UPDATE`, s.row.ID).Exec(ctx); err != nil {
			return err
		}
		b, err := ledger.LoadBook(ctx, tx, s.sale)
		if err != nil {
			return err
		}
		tr, err := ledger.Refund(s.sale, b, s.row.AmountPaidCents, "re_"+s.row.ID.String()[:8], time.Now())
		if err != nil {
			return err
		}
		if _, err := tx.NewRaw(`UPDATE purchases SET refund_amount_cents = amount_paid_cents, status = ?, refunded_at = now() WHERE id = ?`,
			model.PurchaseRefunded, s.row.ID).Exec(ctx); err != nil {
			return err
		}
		_, err = ledger.Post(ctx, tx, tr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) contentOf(t testing.TB, creator string) uuid.UUID {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.content[creator]; ok {
		return id
	}
	id := uuid.New()
	c := model.Content{ID: id, CreatorID: creator, OrganizationID: e.org, PriceCents: 100, Currency: "usd", Visibility: "public"}
	if _, err := e.db.NewInsert().Model(&c).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.content[creator] = id
	return id
}

// balance returns the balance of a creator's account of kind in usd.
func (e *env) balance(t testing.TB, creator string, kind ledger.Kind) int64 {
	t.Helper()
	var b []int64
	if err := e.db.NewRaw(`SELECT balance FROM ledger_accounts WHERE owner = ? AND currency = 'usd' AND kind = ?`,
		ledger.CreatorOwner(creator), string(kind)).Scan(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// payouts returns every payout, oldest first.
func (e *env) payouts(t testing.TB) []model.Payout {
	t.Helper()
	var ps []model.Payout
	if err := e.db.NewSelect().Model(&ps).Order("created_at", "id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ps
}

// payoutOf returns the one payout of a creator.
func (e *env) payoutOf(t testing.TB, creator string) model.Payout {
	t.Helper()
	var ps []model.Payout
	if err := e.db.NewSelect().Model(&ps).Where("payee_id = ?", creator).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%s has %d payouts, want 1", creator, len(ps))
	}
	return ps[0]
}

// mustVerify fails the test when the ledger does not verify.
func (e *env) mustVerify(t testing.TB) {
	t.Helper()
	d, err := ledger.Verify(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		t.Fatal(d)
	}
}

// noDuplicates fails the test when a transfer group has more than one
// transfer.
func (e *env) noDuplicates(t testing.TB) {
	t.Helper()
	if d := e.fake.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicate transfers: %v", d)
	}
}

// outboxCount counts outbox rows of a subject.
func (e *env) outboxCount(t testing.TB, subject string) int {
	t.Helper()
	n, err := e.db.NewSelect().Table("outbox").Where("subject = ?", subject).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func creatorN(i int) string { return fmt.Sprintf("cr_%04d", i) }
