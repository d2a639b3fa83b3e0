package purchase_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// benchCheckouts returns n distinct paid checkout.session.completed events
// (own session, payment intent and customer each, as in production: no
// contention on one purchase or access row), built before the timer starts.
func benchCheckouts(b *testing.B, n int, org, content uuid.UUID) []stripeevent.Event {
	b.Helper()
	run := stripefixture.NewID("", 6)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	evs := make([]stripeevent.Event, n)
	for i := range evs {
		name := fmt.Sprintf("%s%08d", run, i)
		body, err := stripefixture.CheckoutEvent("checkout.session.completed",
			stripefixture.Meta{EventID: "evt_" + name, Created: at},
			stripefixture.Checkout{SessionID: "cs_" + name, PaymentIntentID: "pi_" + name, Customer: "cus_" + name,
				AmountTotal: 2999, Currency: "usd",
				Metadata: stripefixture.PurchaseMetadata("user_"+name, content.String(), org.String(), 2999, "usd")})
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = stripeevent.Event{ID: "evt_" + name, Type: "checkout.session.completed", Endpoint: "default",
			APIVersion: "2023-10-16", Created: at, ReceivedAt: at.Add(time.Second), Payload: body,
			Subject: "stripe.events.default.checkout.session.completed", Deliveries: 1}
	}
	return evs
}

// BenchmarkHandle is one checkout through purchase.Handler against the real
// Postgres of testenv.DB: decode, the transaction with stripe_events row,
// content and agreement lookups, purchase, access and outbox rows, commit.
// "single" is Handle (one transaction per event); "batch16" is HandleBatch
// with 16 events per transaction, reported per event.
func BenchmarkHandle(b *testing.B) {
	bdb, _ := testenv.DB(b)
	org, content := uuid.New(), uuid.New()
	if _, err := bdb.NewInsert().Model(&model.Content{ID: content, CreatorID: "creator_bench", OrganizationID: org,
		PriceCents: 2999, Currency: "usd", Visibility: "public"}).Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
	h, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("single", func(b *testing.B) {
		evs := benchCheckouts(b, b.N, org, content)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if out, err := h.Handle(ctx, evs[i]); err != nil || out != handling.Applied {
				b.Fatalf("Handle = %s, %v", out, err)
			}
		}
	})
	b.Run("batch16", func(b *testing.B) {
		evs := benchCheckouts(b, b.N, org, content)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += 16 {
			for j, r := range h.HandleBatch(ctx, evs[i:min(i+16, b.N)]) {
				if r.Err != nil || r.Outcome != handling.Applied {
					b.Fatalf("HandleBatch[%d] = %s, %v", j, r.Outcome, r.Err)
				}
			}
		}
	})
}
