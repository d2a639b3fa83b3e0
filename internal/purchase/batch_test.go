package purchase_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// wantResults compares HandleBatch's results with the expected outcome per
// event ("" for an error whose fault code is wantCode).
func wantResults(t *testing.T, got []handling.Result, want []handling.Outcome, wantCode fault.Code) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results for %d events", len(got), len(want))
	}
	for i, r := range got {
		switch {
		case want[i] == "" && (r.Err == nil || fault.CodeOf(r.Err) != wantCode):
			t.Errorf("event %d: %s, %v; want a %s error", i, r.Outcome, r.Err, wantCode)
		case want[i] != "" && (r.Err != nil || r.Outcome != want[i]):
			t.Errorf("event %d: %s, %v; want %s", i, r.Outcome, r.Err, want[i])
		}
	}
}

// A batch with a poison event in its middle: the others are committed, the
// poison event gets its own permanent error and leaves no trace.
func TestBatchPoisonEventInTheMiddle(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		a, b, c := newWorld(cat, "ba"), newWorld(cat, "bb"), newWorld(cat, "bc")
		poison := checkout(t, "checkout.session.completed", "evt_poison", t0, cat, "cs_poison", 2999,
			func(c *stripefixture.Checkout) { delete(c.Metadata, purchase.MetaContentID) })
		garbled := a.checkout(t, "checkout.session.completed", "evt_garbled", t0, "")
		garbled.Payload = []byte(`{"id":"evt_garbled"`)
		res := e.h.HandleBatch(context.Background(), []stripeevent.Event{
			a.checkout(t, "checkout.session.completed", "evt_ba", t0, ""),
			b.checkout(t, "checkout.session.completed", "evt_bb", t0, ""),
			poison,
			garbled,
			c.checkout(t, "checkout.session.completed", "evt_bc", t0, ""),
		})
		wantResults(t, res, []handling.Outcome{handling.Applied, handling.Applied, "", "", handling.Applied}, fault.Invalid)
		if r := fault.ReasonOf(res[2].Err); r != "metadata_missing" {
			t.Errorf("poison reason = %q", r)
		}
		for _, w := range []world{a, b, c} {
			if p := e.purchaseBySession(w.session); p.Status != model.PurchaseCompleted {
				t.Errorf("%s: status %s", w.session, p.Status)
			}
			if acc := e.access(w.customer, cat.content); acc == nil || acc.RevokedAt != nil {
				t.Errorf("%s: access %+v", w.session, acc)
			}
		}
		if n := e.count("stripe_events", "event_id IN (?)", bun.In([]string{"evt_poison", "evt_garbled"})); n != 0 {
			t.Errorf("%d stripe_events rows of the rejected events", n)
		}
		if n := e.count("purchases", "stripe_checkout_session_id = 'cs_poison'"); n != 0 {
			t.Errorf("poison made %d purchases", n)
		}
		if n := e.count("outbox", ""); n != 3 {
			t.Errorf("outbox rows = %d, want 3", n)
		}
		if got := metric(t, e.reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": "completed"}); got != 3 {
			t.Errorf("purchases_total{completed} = %v, want 3 (only committed effects)", got)
		}
	})
}

// Two events of one session in one batch (and the same event twice): the
// later ones see the earlier ones' uncommitted rows, exactly as one by one.
func TestBatchTwoEventsOfTheSameSession(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		w := newWorld(cat, "same")
		unpaid := w.checkout(t, "checkout.session.completed", "evt_s1", t0, "unpaid")
		paid := w.checkout(t, "checkout.session.async_payment_succeeded", "evt_s2", t0.Add(3600e9), "")
		res := e.h.HandleBatch(context.Background(), []stripeevent.Event{unpaid, paid, paid,
			w.checkout(t, "checkout.session.completed", "evt_s3", t0, "")})
		wantResults(t, res, []handling.Outcome{handling.Applied, handling.Applied, handling.Duplicate, handling.Duplicate}, "")
		p := e.purchaseBySession(w.session)
		if p.Status != model.PurchaseCompleted || e.count("purchases", "") != 1 {
			t.Errorf("purchase %s, %d purchases", p.Status, e.count("purchases", ""))
		}
		if got := subjects(e.outboxRows(p.ID)); !equalStrings(got, []string{"purchases.pending", "purchases.completed"}) {
			t.Errorf("outbox = %v", got)
		}
		if n := e.count("stripe_events", ""); n != 3 {
			t.Errorf("stripe_events rows = %d, want 3", n)
		}
	})
}

// When the batch's transaction fails as a whole, nothing of it is committed
// and every event is handled again in its own transaction: the results are
// exactly those of one-by-one handling.
func TestBatchCommitFailureFallsBackToOneTransactionPerEvent(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		tests := []struct {
			name        string
			breakCommit func(e *env) func(ctx context.Context, tx bun.Tx) error
		}{
			{"connection killed before commit", func(e *env) func(ctx context.Context, tx bun.Tx) error {
				return func(ctx context.Context, tx bun.Tx) error {
					var pid int
					if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
						return err
					}
					_, err := e.db.ExecContext(ctx, "SELECT pg_terminate_backend(?)", pid)
					return err // nil: the commit is what fails
				}
			}},
			{"forced error before commit", func(*env) func(ctx context.Context, tx bun.Tx) error {
				return func(context.Context, bun.Tx) error {
					return fmt.Errorf("commit: %w", errors.New("ERROR: could not serialize access (SQLSTATE 40001)"))
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnvOn(t, path, purchase.AccessPolicy{})
				// Its own pool, so the killed connection is not one the test uses.
				bdb, err := db.Open(context.Background(), e.dsn, db.Options{MaxOpenConns: 2})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = bdb.Close() })
				h, reg := e.newHandler(bdb)
				broken := 0
				purchase.SetBeforeCommit(h, func(ctx context.Context, tx bun.Tx) error {
					broken++
					return tt.breakCommit(e)(ctx, tx)
				})
				cat := e.seedContent()
				a, b := newWorld(cat, "fa"), newWorld(cat, "fb")
				e.mustHandle(b.checkout(t, "checkout.session.completed", "evt_fb", t0, ""), handling.Applied) // applied before
				poison := checkout(t, "checkout.session.completed", "evt_fpoison", t0, cat, "cs_fpoison", 2999,
					func(c *stripefixture.Checkout) { c.Metadata[purchase.MetaAmountPaid] = "1" })
				res := h.HandleBatch(context.Background(), []stripeevent.Event{
					a.checkout(t, "checkout.session.completed", "evt_fa", t0, ""),
					poison,
					b.checkout(t, "checkout.session.completed", "evt_fb", t0, ""),
				})
				wantResults(t, res, []handling.Outcome{handling.Applied, "", handling.Duplicate}, fault.Invalid)
				if broken != 1 {
					t.Errorf("batch commits attempted: %d, want 1", broken)
				}
				if p := e.purchaseBySession(a.session); p.Status != model.PurchaseCompleted {
					t.Errorf("status %s", p.Status)
				}
				if n := e.count("purchases", ""); n != 2 {
					t.Errorf("purchases = %d, want 2", n)
				}
				if n := e.count("outbox", ""); n != 2 {
					t.Errorf("outbox rows = %d, want 2", n)
				}
				if got := metric(t, reg, "paystream_purchases_total", map[string]string{"currency": "usd", "status": "completed"}); got != 1 {
					t.Errorf("purchases_total{completed} = %v, want 1 (counted once, after the real commit)", got)
				}
			})
		}
	})
}

// Three instances handle overlapping batches of the same events (Stripe's
// duplicates and redeliveries) at once: each event is applied exactly once,
// the rest are duplicates, and no batch fails an event because of another.
func TestBatchDuplicatesAcrossThreeInstances(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		var handlers []*purchase.Handler
		for range 3 {
			bdb, err := db.Open(context.Background(), e.dsn, db.Options{MaxOpenConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = bdb.Close() })
			h, _ := e.newHandler(bdb)
			handlers = append(handlers, h)
		}
		const sessions = 8
		var evs []stripeevent.Event
		for i := range sessions {
			w := newWorld(cat, fmt.Sprintf("dup%d", i))
			evs = append(evs, w.checkout(t, "checkout.session.completed", fmt.Sprintf("evt_dup%d", i), t0, ""),
				w.checkout(t, "checkout.session.completed", fmt.Sprintf("evt_dup%d_again", i), t0, ""))
		}
		for round := range 3 {
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				outcomes = map[handling.Outcome]int{}
			)
			begin := make(chan struct{})
			for i, h := range handlers {
				// Each instance gets every event, in a different order and cut
				// into batches of a different size.
				batch := make([]stripeevent.Event, len(evs))
				for j := range evs {
					batch[j] = evs[(j*(i+1)+round)%len(evs)]
				}
				if i == 1 {
					for l, r := 0, len(batch)-1; l < r; l, r = l+1, r-1 {
						batch[l], batch[r] = batch[r], batch[l]
					}
				}
				size := 4 + 2*i
				wg.Go(func() {
					<-begin
					for len(batch) > 0 {
						n := min(size, len(batch))
						part := batch[:n]
						batch = batch[n:]
						// Retry what failed transiently (a deadlock between two
						// batches, a lost race), as the runtime would.
						for len(part) > 0 {
							var again []stripeevent.Event
							for k, r := range h.HandleBatch(context.Background(), part) {
								if r.Err != nil {
									if fault.ActionOf(r.Err) != fault.Retry {
										t.Errorf("%s: %v", part[k].ID, r.Err)
										continue
									}
									again = append(again, part[k])
									continue
								}
								mu.Lock()
								outcomes[r.Outcome]++
								mu.Unlock()
							}
							part = again
						}
					}
				})
			}
			close(begin)
			wg.Wait()
			wantApplied := sessions
			if round > 0 {
				wantApplied = 0
			}
			if outcomes[handling.Applied] != wantApplied || outcomes[handling.Duplicate] != 3*len(evs)-wantApplied {
				t.Errorf("round %d outcomes = %v, want %d applied, the rest duplicate", round, outcomes, wantApplied)
			}
		}
		if n := e.count("purchases", ""); n != sessions {
			t.Errorf("purchases = %d, want %d", n, sessions)
		}
		if n := e.count("stripe_events", ""); n != len(evs) {
			t.Errorf("stripe_events = %d, want %d", n, len(evs))
		}
		if n := e.count("outbox", ""); n != sessions {
			t.Errorf("outbox rows = %d, want %d", n, sessions)
		}
		if n := e.count("content_access", ""); n != sessions {
			t.Errorf("access rows = %d, want %d", n, sessions)
		}
	})
}
