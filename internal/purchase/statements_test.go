package purchase_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
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
	const budget = 10 // BEGIN, purchase ×2, content+terms, access ×3, outbox, stripe_events, COMMIT
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
}
