package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// seedContent inserts a content item of 2999 usd and returns its
// organization and id.
func seedContent(t *testing.T, bdb *bun.DB) (org, content uuid.UUID) {
	t.Helper()
	org, content = uuid.New(), uuid.New()
	if _, err := bdb.NewInsert().Model(&model.Content{ID: content, CreatorID: "creator_1", OrganizationID: org,
		PriceCents: 2999, Currency: "usd", Visibility: "public"}).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return org, content
}

// TestBatchesWithDuplicatesAcrossThreeInstances runs three processors, each
// with its own connection, database pool and the real purchase handler
// batching (the default), over a backlog in which every checkout is stored
// three times under different message ids (as after Stripe's retries, a
// reconcile and a replay) and one checkout is poison. Every session ends with
// exactly one purchase, one access row and one outbox event; every copy is
// acked; only the poison event is dead-lettered.
func TestBatchesWithDuplicatesAcrossThreeInstances(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	bdb, dsn := testenv.DB(t)
	ctx := context.Background()
	org, content := seedContent(t, bdb)
	const sessions = 20
	at := time.Now().Add(-time.Minute)
	publishCopy := func(id string, body []byte, copyN int) {
		t.Helper()
		m, err := streams.Msg(stripeevent.Event{ID: id, Type: "checkout.session.completed", APIVersion: "2023-10-16",
			Endpoint: "default", Created: at, ReceivedAt: time.Now(), Payload: body})
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set(streams.HeaderMsgID, fmt.Sprintf("%s-copy%d", id, copyN)) // defeat dedup: a genuine duplicate
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var bodies [][]byte
	var ids []string
	for i := range sessions {
		name := fmt.Sprintf("dup%02d", i)
		md := stripefixture.PurchaseMetadata("user_"+name, content.String(), org.String(), 2999, "usd")
		if i == sessions/2 {
			md["amountPaidCents"] = "1" // poison: never matches what Stripe charged
		}
		body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: "evt_" + name, Created: at},
			stripefixture.Checkout{SessionID: "cs_" + name, PaymentIntentID: "pi_" + name, AmountTotal: 2999, Currency: "usd", Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		bodies, ids = append(bodies, body), append(ids, "evt_"+name)
	}
	// The whole backlog is stored before any instance pulls, so batches form.
	for c := range 3 {
		for i := range sessions {
			publishCopy(ids[(i+c*7)%sessions], bodies[(i+c*7)%sessions], c)
		}
	}

	cfg := testConfig()
	cfg.Workers = 3
	cfg.Consumer.AckWait = 10 * time.Second // exactly-once of the effects is checked, not redelivery
	var group []*started
	for range 3 {
		pool, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: cfg.Workers})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pool.Close() })
		h, err := purchase.NewHandler(pool, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := handling.Handler(h).(handling.BatchHandler); !ok {
			t.Fatal("purchase.Handler does not implement handling.BatchHandler")
		}
		group = append(group, start(t, connect(t, n), h, cfg))
	}
	testenv.Eventually(t, 30*time.Second, "every copy settled, the poison dead-lettered", func() bool {
		return settled(t, js) && len(dlqMessages(t, js)) == 3
	})
	count := func(table, where string, args ...any) int {
		t.Helper()
		q := bdb.NewSelect().Table(table)
		if where != "" {
			q = q.Where(where, args...)
		}
		c, err := q.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(c)
	}
	if c := count("purchases", ""); c != sessions-1 {
		t.Errorf("purchases = %d, want %d", c, sessions-1)
	}
	if c := count("content_access", ""); c != sessions-1 {
		t.Errorf("access rows = %d, want %d", c, sessions-1)
	}
	if c := count("outbox", ""); c != sessions-1 {
		t.Errorf("outbox rows = %d, want %d", c, sessions-1)
	}
	if c := count("stripe_events", ""); c != sessions-1 {
		t.Errorf("stripe_events rows = %d, want %d (the poison leaves none)", c, sessions-1)
	}
	// Each copy of the poison event is dead-lettered on its own (three
	// messages); nothing else is.
	for _, dl := range dlqMessages(t, js) {
		if dl.EventID != ids[sessions/2] || dl.Reason != "amount_mismatch" {
			t.Errorf("dead letter %s (%s), want only %s (amount_mismatch)", dl.EventID, dl.Reason, ids[sessions/2])
		}
	}
	// The backlog was there before the instances started: some worker must
	// have taken more than one event at once.
	var multi uint64
	for _, s := range group {
		var m dto.Metric
		if err := s.m.batchSize.Write(&m); err != nil {
			t.Fatal(err)
		}
		h := m.GetHistogram()
		multi += h.GetSampleCount() - h.GetBucket()[0].GetCumulativeCount() // above the le=1 bucket
	}
	if multi == 0 {
		t.Error("no batch of more than one event formed")
	}
}

// TestPayloadsThatAreNotTheirEventAreDeadLettered: the runtime checks only
// the headers; a body that is not JSON, or is another event than its
// headers say, reaches the real purchase handler, whose decode refuses it as
// invalid_payload. It is dead-lettered at once, leaves no row behind, and
// does not hold up the good event behind it, alone or in a batch.
func TestPayloadsThatAreNotTheirEventAreDeadLettered(t *testing.T) {
	for _, batch := range []int{1, 16} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			n := testenv.StartNATS(t)
			js := n.JetStream(t)
			bdb, _ := testenv.DB(t)
			ctx := context.Background()
			org, content := seedContent(t, bdb)
			at := time.Now().Add(-time.Minute)
			checkout := func(id, session string) []byte {
				t.Helper()
				body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: id, Created: at},
					stripefixture.Checkout{SessionID: session, PaymentIntentID: "pi_" + session, AmountTotal: 2999, Currency: "usd",
						Metadata: stripefixture.PurchaseMetadata("user_"+session, content.String(), org.String(), 2999, "usd")})
				if err != nil {
					t.Fatal(err)
				}
				return body
			}
			pub := streams.NewPublisher(js)
			for _, ev := range []stripeevent.Event{
				{ID: "evt_html", Payload: []byte("<html>")},
				{ID: "evt_array", Payload: []byte("[1,2]")},
				{ID: "evt_claimed", Payload: checkout("evt_other", "cs_other")}, // a signed body, but of another event
				{ID: "evt_good", Payload: checkout("evt_good", "cs_good")},
			} {
				ev.Type, ev.Endpoint, ev.Created, ev.ReceivedAt = "checkout.session.completed", "default", at, time.Now()
				if _, err := pub.Publish(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			h, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.Workers, cfg.BatchSize = 1, batch
			s := start(t, js, h, cfg)
			testenv.Eventually(t, 10*time.Second, "consuming", func() bool { return s.p.Check(ctx) == nil })
			testenv.Eventually(t, 15*time.Second, "every event settled", func() bool { return settled(t, js) && len(dlqMessages(t, js)) == 3 })
			reasons := map[string]string{}
			for _, dl := range dlqMessages(t, js) {
				reasons[dl.EventID] = dl.Reason
			}
			want := map[string]string{"evt_html": "invalid_payload", "evt_array": "invalid_payload", "evt_claimed": "invalid_payload"}
			if fmt.Sprint(reasons) != fmt.Sprint(want) {
				t.Errorf("dead-letter reasons = %v, want %v", reasons, want)
			}
			var rows []model.StripeEvent
			if err := bdb.NewSelect().Model(&rows).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].EventID != "evt_good" {
				t.Errorf("stripe_events = %+v, want evt_good's row alone", rows)
			}
			if c, err := bdb.NewSelect().Table("purchases").Where("stripe_checkout_session_id = ?", "cs_other").Count(ctx); err != nil || c != 0 {
				t.Errorf("purchases of the mismatched body = %d, %v; want none", c, err)
			}
		})
	}
}
