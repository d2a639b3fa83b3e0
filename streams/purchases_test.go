package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func publishPurchase(t *testing.T, js jetstream.JetStream, kind string, data streams.PurchaseData) string {
	t.Helper()
	id := uuid.NewString()
	body, err := json.Marshal(streams.PurchaseEvent{
		SpecVersion: streams.CloudEventsSpecVersion, ID: id, Source: streams.PurchaseEventSource,
		Type: streams.PurchaseEventType(kind), Subject: data.PurchaseID.String(), Time: time.Now().UTC(),
		DataContentType: streams.PurchaseDataType, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(streams.PurchaseSubject(kind))
	m.Data = body
	m.Header.Set(streams.HeaderMsgID, id)
	if _, err := streams.PublishMsg(context.Background(), js, m); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSubscribePurchasesDeliversTypedEventsAndRetries(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)
	js := n.JetStream(t)

	var (
		mu       sync.Mutex
		got      []streams.PurchaseEvent
		failOnce = true
	)
	cc, err := streams.SubscribePurchases(ctx, js, "notifier-test", func(_ context.Context, ev streams.PurchaseEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if ev.Data.CustomerID == "flaky" && failOnce {
			failOnce = false
			return errors.New("mail server down")
		}
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)

	pid := uuid.New()
	id1 := publishPurchase(t, js, streams.PurchaseCompleted, streams.PurchaseData{PurchaseID: pid, CustomerID: "user_1",
		AmountPaidCents: 2999, Currency: "usd", Status: "completed", Split: streams.PurchaseSplit{PlatformFeeCents: 300, CreatorPayoutCents: 2699}})
	// Garbage on the stream is terminated, not redelivered forever, and does
	// not block what follows.
	bad := nats.NewMsg("purchases.completed")
	bad.Data = []byte("not json")
	if _, err := streams.PublishMsg(ctx, js, bad); err != nil {
		t.Fatal(err)
	}
	id2 := publishPurchase(t, js, streams.PurchaseRefunded, streams.PurchaseData{PurchaseID: pid, CustomerID: "flaky", Status: "refunded",
		Refund: &streams.PurchaseRefund{AmountCents: 2999, Full: true}})

	testenv.Eventually(t, 15*time.Second, "2 purchase events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0].ID != id1 || got[0].Type != "com.paystream.purchase.completed.v1" || got[0].Data.PurchaseID != pid ||
		got[0].Data.Split.CreatorPayoutCents != 2699 || got[0].Subject != pid.String() {
		t.Errorf("first event = %+v", got[0])
	}
	if got[1].ID != id2 || got[1].Data.Refund == nil || !got[1].Data.Refund.Full {
		t.Errorf("retried event = %+v", got[1])
	}
	cons, err := js.Consumer(ctx, streams.PurchasesStream, "notifier-test")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.FilterSubject != "purchases.>" || info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer config = %+v", info.Config)
	}
}

func TestSubscribePurchasesValidatesArguments(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	if _, err := streams.SubscribePurchases(context.Background(), js, "", func(context.Context, streams.PurchaseEvent) error { return nil }); err == nil {
		t.Error("empty durable accepted")
	}
	if _, err := streams.SubscribePurchases(context.Background(), js, "x", nil); err == nil {
		t.Error("nil handler accepted")
	}
}

func TestRetryDelayDoublesToCap(t *testing.T) {
	tests := []struct {
		n    uint64
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {1000, time.Minute}}
	for _, tt := range tests {
		if got := streams.RetryDelay(tt.n, time.Minute); got != tt.want {
			t.Errorf("RetryDelay(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}
