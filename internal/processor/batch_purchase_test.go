package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

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
	org, content := uuid.New(), uuid.New()
	if _, err := bdb.NewInsert().Model(&model.Content{ID: content, CreatorID: "creator_1", OrganizationID: org,
		PriceCents: 2999, Currency: "usd", Visibility: "public"}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	const sessions = 20
	at := time.Now().Add(-time.Minute)
	publishCopy := func(id string, body []byte, copyN int) {
		t.Helper()
		m, err := streams.Msg(streams.Event{ID: id, Type: "checkout.session.completed", APIVersion: "2023-10-16",
			Endpoint: "default", Created: at.Unix(), ReceivedAt: time.Now()}, body)
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
	eventually(t, 30*time.Second, "every copy settled, the poison dead-lettered", func() bool {
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
