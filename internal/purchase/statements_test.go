package purchase_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// statementLog records the statements bun sends while on.
type statementLog struct {
	mu  sync.Mutex
	on  bool
	sql []string
}

func (l *statementLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (l *statementLog) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.sql = append(l.sql, ev.Query)
	}
}

func (l *statementLog) record(on bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = on
	out := l.sql
	l.sql = nil
	return out
}

// The pipeline's throughput is bounded by SQL statements per event (see
// docs/benchmarks.md); this pins the count of the hot path, a paid checkout
// that creates a purchase, so a change that adds a round trip is a decision.
func TestCheckoutStatementBudget(t *testing.T) {
	// BEGIN, purchase ×2, content+terms, access ×3, outbox, checkout_sessions
	// mark, stripe_events, ledger ×2, COMMIT. The mark (MarkCheckoutSession,
	// one UPDATE, a no-op for sessions the purchase API did not create) is
	// the decided 11th: the session row moves in the purchase's
	// transaction. The ledger's two (ledger.PostMany: the transaction, then
	// the accounts with the entries in one statement) are the sale's
	// posting, in the same transaction.
	const budget = 13
	e := newEnv(t, purchase.AccessPolicy{})
	log := &statementLog{}
	e.db.AddQueryHook(log)
	w := newWorld(e.seedContent(), "budget")

	log.record(true)
	e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_budget", t0, ""), handling.Applied)
	got := log.record(false)
	if len(got) != budget {
		t.Errorf("a paid checkout sent %d statements, budget %d:\n%s", len(got), budget, strings.Join(got, "\n"))
	}
	checkLedgerLast(t, got)
}

// checkLedgerLast fails unless the ledger's statements are the last before
// the COMMIT: the accounts (the platform's are hot: every sale of a
// currency updates them) are locked last, by the statement right before
// the commit, and held only until the commit.
func checkLedgerLast(t *testing.T, stmts []string) {
	t.Helper()
	if len(stmts) < 3 {
		t.Fatalf("%d statements", len(stmts))
	}
	if s := strings.TrimSpace(stmts[len(stmts)-3]); !strings.HasPrefix(s, "INSERT INTO ledger_transactions") {
		t.Errorf("statement %d of %d is %.60q…, want the INSERT INTO ledger_transactions of the posting", len(stmts)-2, len(stmts), s)
	}
	if s := strings.TrimSpace(stmts[len(stmts)-2]); !strings.Contains(s, "INSERT INTO ledger_accounts") ||
		!strings.Contains(s, "INSERT INTO ledger_entries") {
		t.Errorf("statement %d of %d is %.60q…, want the posting's accounts and entries", len(stmts)-1, len(stmts), s)
	}
	if last := strings.TrimSpace(stmts[len(stmts)-1]); last != "COMMIT" {
		t.Errorf("last statement %.60q, want COMMIT", last)
	}
}

// The id is claimed after the route, so a copy of an event handled before
// runs its route again; if that fails (the world changed since), the copy is
// still a duplicate, as when the claim came first, alone or in a batch.
func TestRedeliveryWhoseRouteFailsIsADuplicate(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "Handle", true: "HandleBatch"}[batch], func(t *testing.T) {
			e := newEnv(t, purchase.AccessPolicy{})
			cat := e.seedContent()
			w := newWorld(cat, "again")
			// A copy of an event recorded before, whose checkout now fails its
			// metadata check.
			bad := checkout(t, "checkout.session.completed", "evt_again", t0, cat, "cs_again", 2999,
				func(c *stripefixture.Checkout) { delete(c.Metadata, purchase.MetaContentID) })
			e.insert(&model.StripeEvent{EventID: bad.ID, Type: bad.Type, Endpoint: "default", APIVersion: bad.APIVersion,
				ProcessedAt: t0, Outcome: model.EventRecorded, Payload: model.JSON(bad.Payload)})
			var got []handling.Result
			if batch {
				got = e.h.HandleBatch(context.Background(), []stripeevent.Event{
					bad, w.checkout(t, "checkout.session.completed", "evt_fresh", t0, "")})
			} else {
				out, err := e.handle(bad)
				got = []handling.Result{{Outcome: out, Err: err}}
			}
			if got[0].Err != nil || got[0].Outcome != handling.Duplicate {
				t.Errorf("copy of a recorded event = %s, %v; want duplicate", got[0].Outcome, got[0].Err)
			}
			if batch && (got[1].Err != nil || got[1].Outcome != handling.Applied) {
				t.Errorf("its neighbour = %s, %v; want applied", got[1].Outcome, got[1].Err)
			}
			if n := e.count("stripe_events", "event_id = 'evt_again' AND outcome = ?", model.EventRecorded); n != 1 {
				t.Errorf("the recorded row changed (%d rows as before)", n)
			}
		})
	}
}
