package purchase_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// env is one test's database, handler and metrics registry.
type env struct {
	t   *testing.T
	db  *bun.DB
	dsn string
	h   *purchase.Handler
	reg *prometheus.Registry
	cfg purchase.Config
	clk *clock
	// batch makes deliver use HandleBatch (the runtime's default).
	batch bool
	// path is the batch path of every handler of the env; on the set-based
	// path, handle runs single events through HandleBatch too.
	path purchase.BatchPath
}

// paths are the two ways of applying events; every correctness test runs on
// both (forEachPath), and both must end in the same rows.
var paths = []struct {
	name string
	path purchase.BatchPath
}{
	{"per-event", purchase.PathPerEvent},
	{"set-based", purchase.PathSetBasedAlways},
}

// forEachPath runs f as a subtest on each path.
func forEachPath(t *testing.T, f func(t *testing.T, path purchase.BatchPath)) {
	t.Helper()
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) { f(t, p.path) })
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, pol purchase.AccessPolicy) *env {
	t.Helper()
	return newEnvOn(t, purchase.PathPerEvent, pol)
}

// newEnvOn is newEnv whose handlers apply batches by path.
func newEnvOn(t *testing.T, path purchase.BatchPath, pol purchase.AccessPolicy) *env {
	t.Helper()
	bdb, dsn := testenv.DB(t)
	e := &env{t: t, db: bdb, dsn: dsn, clk: &clock{t: t0}, path: path}
	e.cfg = purchase.Config{Access: pol, Now: e.clk.Now}
	e.h, e.reg = e.newHandler(bdb)
	// Whatever the test did, the ledger agrees with the purchases.
	t.Cleanup(e.verifyLedger)
	return e
}

// newHandler builds another handler (another "instance") on bdb.
func (e *env) newHandler(bdb *bun.DB) (*purchase.Handler, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	h, err := purchase.NewHandler(bdb, e.cfg, purchase.NewMetrics(reg), discardLogger())
	if err != nil {
		e.t.Fatal(err)
	}
	purchase.SetBatchPath(h, e.path)
	return h, reg
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// catalog is seeded content.
type catalog struct {
	org     uuid.UUID
	content uuid.UUID
	creator string
}

func (e *env) seedContent() catalog {
	e.t.Helper()
	c := catalog{org: uuid.New(), content: uuid.New(), creator: "creator_" + uuid.NewString()[:8]}
	e.insert(&model.Content{ID: c.content, CreatorID: c.creator, OrganizationID: c.org, PriceCents: 2999,
		Currency: "usd", Visibility: "public"})
	return c
}

func (e *env) insert(models ...any) {
	e.t.Helper()
	for _, m := range models {
		if _, err := e.db.NewInsert().Model(m).Exec(context.Background()); err != nil {
			e.t.Fatalf("insert %T: %v", m, err)
		}
	}
}

// toEvent wraps a fixture payload as the runtime delivers it.
func toEvent(t *testing.T, payload []byte) stripeevent.Event {
	t.Helper()
	return testenv.Delivered(t, payload)
}

// checkout builds a checkout.session.* event for cat with a valid metadata
// contract; edit adjusts the session before it is built.
func checkout(t *testing.T, typ, eventID string, at time.Time, cat catalog, session string, amount int64, edit func(*stripefixture.Checkout)) stripeevent.Event {
	t.Helper()
	c := stripefixture.Checkout{
		SessionID: session, PaymentIntentID: "pi_" + session, Customer: "cus_1", AmountTotal: amount, Currency: "usd",
		Metadata: stripefixture.PurchaseMetadata("user_1", cat.content.String(), cat.org.String(), amount, "usd"),
	}
	if edit != nil {
		edit(&c)
	}
	b, err := stripefixture.CheckoutEvent(typ, stripefixture.Meta{EventID: eventID, Created: at}, c)
	if err != nil {
		t.Fatal(err)
	}
	return toEvent(t, b)
}

func (e *env) handle(ev stripeevent.Event) (handling.Outcome, error) {
	e.t.Helper()
	return e.handleOn(e.h, ev)
}

// handleOn handles one event with h on the env's path: Handle, or on the
// set-based path a batch of one.
func (e *env) handleOn(h *purchase.Handler, ev stripeevent.Event) (handling.Outcome, error) {
	e.t.Helper()
	if e.path == purchase.PathPerEvent {
		return h.Handle(context.Background(), ev)
	}
	r := h.HandleBatch(context.Background(), []stripeevent.Event{ev})[0]
	return r.Outcome, r.Err
}

func (e *env) mustHandle(ev stripeevent.Event, want handling.Outcome) {
	e.t.Helper()
	got, err := e.handle(ev)
	if err != nil {
		e.t.Fatalf("Handle(%s %s): %v", ev.Type, ev.ID, err)
	}
	if got != want {
		e.t.Fatalf("Handle(%s %s) = %s, want %s", ev.Type, ev.ID, got, want)
	}
}

func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	q := e.db.NewSelect().Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	n, err := q.Count(context.Background())
	if err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return int(n)
}

func (e *env) purchaseBySession(session string) model.Purchase {
	e.t.Helper()
	var p model.Purchase
	if err := e.db.NewSelect().Model(&p).Where("stripe_checkout_session_id = ?", session).Scan(context.Background()); err != nil {
		e.t.Fatalf("purchase of %s: %v", session, err)
	}
	return p
}

func (e *env) access(user string, content uuid.UUID) *model.ContentAccess {
	e.t.Helper()
	var a model.ContentAccess
	err := e.db.NewSelect().Model(&a).Where("user_id = ? AND content_id = ?", user, content).Scan(context.Background())
	if err != nil {
		return nil
	}
	return &a
}

func (e *env) outboxRows(aggregate uuid.UUID) []model.Outbox {
	e.t.Helper()
	var rows []model.Outbox
	if err := e.db.NewSelect().Model(&rows).Where("aggregate_id = ?", aggregate).OrderExpr("created_at, id").Scan(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// metric is testenv.Metric.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return testenv.Metric(t, reg, name, labels)
}
