package eventtx_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
)

// posting is the data.object of the poster family's events: post the sale
// of a purchase, or its refund up to a cumulative amount, then fail if asked.
type posting struct {
	ID       string `json:"id"`
	Purchase string `json:"purchase"`
	Refund   int64  `json:"refund"` // 0: the sale
	Fail     bool   `json:"fail"`
}

// poster routes charge.refunded (any type would do) to rules of the ledger
// on the books the lifecycle gives it.
type poster struct{ sales map[string]ledger.Sale }

func (p poster) route(ctx context.Context, tx bun.Tx, ev eventtx.Event, o *posting, rec *eventtx.Record) error {
	s := p.sales[o.Purchase]
	var t ledger.Transaction
	var err error
	if o.Refund == 0 {
		t, err = ledger.PurchaseCompleted(s)
	} else {
		var b ledger.Book
		if b, err = rec.Book(ctx, tx, s); err != nil {
			return err
		}
		t, err = ledger.Refund(s, b, o.Refund, "", ev.At)
	}
	if err != nil {
		return err
	}
	rec.Post(t)
	if o.Fail {
		return fault.New(fault.Invalid, "asked_to_fail", "event %s fails after posting", ev.ID)
	}
	return nil
}

func postingEvent(id string, o posting) stripeevent.Event {
	o.ID = "po_" + id
	obj := fmt.Sprintf(`{"id":%q,"purchase":%q,"refund":%d,"fail":%t}`, o.ID, o.Purchase, o.Refund, o.Fail)
	return stripeevent.Event{ID: id, Type: "charge.refunded", Endpoint: "default", Created: time.Unix(1700000000, 0),
		Payload: []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"charge.refunded","data":{"object":%s}}`, id, obj))}
}

// statementCounter counts the statements that start with a prefix.
type statementCounter struct {
	mu     sync.Mutex
	prefix string
	n      int
}

func (c *statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *statementCounter) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	if strings.HasPrefix(strings.TrimSpace(ev.Query), c.prefix) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

func (c *statementCounter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

// The events of a transaction post their ledger transactions together, with
// one PostMany before the commit: a later event reads the book with the
// earlier events' postings folded in, a failed event's postings go with its
// savepoint, and only committed postings are counted.
func TestLedgerPostingsOfATransactionArePostedOnce(t *testing.T) {
	for _, path := range []struct {
		name  string
		batch eventtx.BatchPath
	}{{"per-event", eventtx.BatchPerEvent}, {"set-based", eventtx.BatchSetBased}} {
		t.Run(path.name, func(t *testing.T) {
			ctx := context.Background()
			bdb, _ := testenv.DB(t)
			org := uuid.New()
			content := uuid.New()
			if _, err := bdb.ExecContext(ctx, `INSERT INTO content (id, creator_id, organization_id, price_cents, currency)
				VALUES (?, 'cr_1', ?, 100, 'usd')`, content, org); err != nil {
				t.Fatal(err)
			}
			p := poster{sales: map[string]ledger.Sale{}}
			for _, name := range []string{"p1", "p2", "p3"} {
				id := uuid.Must(uuid.NewV7())
				if _, err := bdb.ExecContext(ctx, `INSERT INTO purchases (id, customer_id, content_id, organization_id,
					amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents,
					platform_fee_bps, organization_fee_bps, stripe_checkout_session_id, status, purchased_at)
					VALUES (?, 'u1', ?, ?, 100, 'usd', 10, 0, 90, 1000, 0, ?, 'completed', now())`, id, content, org, "cs_"+name); err != nil {
					t.Fatal(err)
				}
				p.sales[name] = ledger.Sale{PurchaseID: id, Currency: "usd", OrganizationID: org, CreatorID: "cr_1",
					PurchasedAt: time.Unix(1700000000, 0), Split: split.Split{Amount: 100, Platform: 10, Creator: 90}}
			}
			reg := prometheus.NewRegistry()
			fam := eventtx.Family{Name: "poster", Routes: map[string]eventtx.Route{"charge.refunded": eventtx.On("charge", p.route)}}
			h, err := eventtx.New(bdb, eventtx.Config{Batch: path.batch, Ledger: ledger.NewMetrics(reg)}, discard(), fam)
			if err != nil {
				t.Fatal(err)
			}
			inserts := &statementCounter{prefix: "INSERT INTO ledger_transactions"}
			bdb.AddQueryHook(inserts)

			res := h.HandleBatch(ctx, []stripeevent.Event{
				postingEvent("evt_1", posting{Purchase: "p1"}),
				postingEvent("evt_2", posting{Purchase: "p1", Refund: 40}), // on the book with evt_1's sale
				postingEvent("evt_3", posting{Purchase: "p2", Fail: true}),
				postingEvent("evt_4", posting{Purchase: "p1", Refund: 100}), // the rest: 60 more
				postingEvent("evt_5", posting{Purchase: "p2", Refund: 10}),  // p2's sale failed with evt_3: not posted
			})
			for i, want := range []string{"applied", "applied", "error asked_to_fail", "applied", "error not posted"} {
				got := string(res[i].Outcome)
				if res[i].Err != nil {
					got = "error " + fault.ReasonOf(res[i].Err)
					if strings.Contains(res[i].Err.Error(), ledger.ErrNotPosted.Error()) {
						got = "error not posted"
					}
				}
				if got != want {
					t.Errorf("event %d: %s (%v), want %s", i+1, got, res[i].Err, want)
				}
			}
			if n := inserts.take(); n != 1 {
				t.Errorf("the batch inserted ledger transactions with %d statements, want 1 (one PostMany)", n)
			}
			var keys []string
			if err := bdb.NewRaw(`SELECT idempotency_key FROM ledger_transactions ORDER BY id`).Scan(ctx, &keys); err != nil {
				t.Fatal(err)
			}
			id1 := p.sales["p1"].PurchaseID.String()
			if want := []string{"purchase:" + id1, "refund:" + id1 + ":100", "refund:" + id1 + ":40"}; fmt.Sprint(keys) != fmt.Sprint(want) {
				t.Errorf("posted %q, want %q", keys, want)
			}
			var given int64
			if err := bdb.NewRaw(`SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
				WHERE a.kind = 'stripe_clearing'`).Scan(ctx, &given); err != nil {
				t.Fatal(err)
			}
			if given != 0 {
				t.Errorf("stripe_clearing = %d, want 0: p1 sold 100 and refunded 100 once", given)
			}

			// One event alone posts in its own transaction.
			if out, err := h.Handle(ctx, postingEvent("evt_6", posting{Purchase: "p3"})); err != nil || out != handling.Applied {
				t.Fatalf("Handle = %s, %v", out, err)
			}
			if n := inserts.take(); n != 1 {
				t.Errorf("one event inserted ledger transactions with %d statements, want 1", n)
			}
			for cause, want := range map[string]float64{"purchase": 2, "refund": 2} {
				if got := testenv.Metric(t, reg, "paystream_ledger_postings_total", map[string]string{"cause": cause}); got != want {
					t.Errorf("ledger_postings_total{%s} = %v, want %v", cause, got, want)
				}
			}
		})
	}
}
