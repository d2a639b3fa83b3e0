package purchase_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
)

// Connections killed mid-transaction (pg_terminate_backend) make Handle fail
// with a retryable error and roll back; retrying applies every event exactly
// once: nothing lost, nothing doubled. On the set-based path a killed batch
// transaction is usually absorbed by its fallback (each event again in its
// own transaction), so the test counts the killer's hits, not only the
// retries the caller saw.
func TestConnectionsKilledMidTransactionLoseAndDoubleNothing(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var killed atomic.Int64 // backends terminated inside a transaction or statement
		wg.Add(1)
		go func() { // the killer: its own connection, outside the handler's pool
			defer wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for ctx.Err() == nil {
				if conn == nil { // first round, or its own connection was lost
					c, err := pgx.Connect(ctx, e.dsn)
					if err != nil {
						if ctx.Err() == nil {
							t.Logf("killer: connect: %v", err)
							time.Sleep(50 * time.Millisecond)
						}
						continue
					}
					conn = c
				}
				var n int64
				err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
					FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&n)
				if err != nil {
					t.Logf("killer: %v", err)
					conn.Close(context.Background())
					conn = nil
					continue
				}
				killed.Add(n)
				time.Sleep(20 * time.Millisecond)
			}
		}()

		// At least 30 sessions, and more (up to 600) until the killer has hit
		// a transaction: on a fast, quiet machine 30 may all slip between
		// its rounds.
		n, retries := 0, 0
		for i := 0; i < 30 || killed.Load() == 0 && i < 600; i++ {
			n++
			w := newWorld(cat, fmt.Sprintf("kill%d", i))
			evs := []stripeevent.Event{
				w.checkout(t, "checkout.session.completed", "evt_c_"+w.session, t0, ""),
				w.refund(t, "evt_r_"+w.session, t0.Add(time.Hour), stripefixture.Refund{Amount: 500}),
			}
			for _, ev := range evs {
				for attempt := 0; ; attempt++ {
					_, err := e.handle(ev)
					if err == nil {
						break
					}
					if fault.ActionOf(err) != fault.Retry {
						t.Fatalf("Handle(%s) = %v: a killed connection must be retryable", ev.ID, err)
					}
					if attempt > 500 {
						t.Fatalf("Handle(%s) never succeeded: %v", ev.ID, err)
					}
					retries++
					ev.Deliveries++
				}
			}
		}
		cancel()
		wg.Wait()
		// The killer's last round may have hit a connection just as it went back
		// to the pool (pg_stat_activity lags); close the idle ones so the counts
		// below start on live connections.
		e.db.SetMaxIdleConns(0)
		t.Logf("%d sessions, %d backends killed mid-transaction, %d retries seen by the caller", n, killed.Load(), retries)
		if killed.Load() == 0 {
			t.Error("no transaction was killed; the test proved nothing")
		}
		for table, want := range map[string]int{"purchases": n, "content_access": n, "stripe_events": 2 * n, "outbox": 2 * n} {
			if got := e.count(table, ""); got != want {
				t.Errorf("%s rows = %d, want %d", table, got, want)
			}
		}
		if got := e.count("purchases", "status = 'partially_refunded' AND refund_amount_cents = 500"); got != n {
			t.Errorf("%d purchases refunded exactly once, want %d", got, n)
		}
	})
}
