package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func TestRunFailsOnBadConfigBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		// The URLs point nowhere: reaching them would hang or fail differently.
		{"bad workers", map[string]string{"PROCESSOR_WORKERS": "many", "NATS_URL": "nats://192.0.2.1:4222"}, "PROCESSOR_WORKERS"},
		{"bad backoff", map[string]string{"PROCESSOR_BACKOFF": "1s,,2s"}, "PROCESSOR_BACKOFF"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"bad outbox batch", map[string]string{"OUTBOX_BATCH_SIZE": "0"}, "OUTBOX_BATCH_SIZE"},
		{"bad purchase flag", map[string]string{"PURCHASE_REVOKE_ON_PARTIAL_REFUND": "sometimes"}, "PURCHASE_REVOKE_ON_PARTIAL_REFUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), nil, config.MapEnv(tt.env), &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if err := run(context.Background(), []string{"--port", "1"}, config.MapEnv(nil), &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errArgs) {
		t.Errorf("run with arguments = %v, want errArgs", err)
	}
}

// TestRunAppliesEventsEndToEnd runs the real program (domain handler and
// outbox relay included) against embedded JetStream and a migrated Postgres.
func TestRunAppliesEventsEndToEnd(t *testing.T) {
	n := testenv.StartNATS(t)
	bdb, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{
		"NATS_URL": n.URL(), "DATABASE_URL": dsn, "ADMIN_ADDR": "127.0.0.1:0", "LOG_LEVEL": "debug",
		"PROCESSOR_WORKERS": "2", "PROCESSOR_MAX_DELIVER": "3", "PROCESSOR_BACKOFF": "50ms,100ms",
		"PROCESSOR_SHUTDOWN_TIMEOUT": "5s", "PROCESSOR_HANDLE_TIMEOUT": "2s",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testenv.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, &bytes.Buffer{}, &logs) }()

	// The program ensures the streams; doing it here too could race a stream
	// update against its consumer create inside the embedded server.
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); streams.Check(ctx, js, streams.EventsStream) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("streams not created by the program after 15s\nlogs:\n%s", logs.String())
		}
	}
	pub := streams.NewPublisher(js)
	publish := func(id, typ string, body []byte) {
		t.Helper()
		_, err := pub.Publish(ctx, stripeevent.Event{ID: id, Type: typ, APIVersion: stripefixture.APIVersion, Endpoint: "default",
			Created: time.Now(), ReceivedAt: time.Now(), Payload: body})
		if err != nil {
			t.Fatal(err)
		}
	}
	// An event type the domain does not handle: recorded as ignored.
	ignored := []byte(fmt.Sprintf(`{"id":"evt_e2e_ignored","object":"event","type":"customer.created","api_version":%q,`+
		`"created":%d,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},`+
		`"data":{"object":{"id":"cus_e2e","object":"customer","email":"a@example.com"}}}`, stripefixture.APIVersion, time.Now().Unix()))
	publish("evt_e2e_ignored", "customer.created", ignored)
	// A checkout for content that does not exist: permanent, dead-lettered.
	md := stripefixture.PurchaseMetadata("user_1", uuid.NewString(), uuid.NewString(), 500, "usd")
	bad, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: "evt_e2e_unknown"},
		stripefixture.Checkout{AmountTotal: 500, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	publish("evt_e2e_unknown", "checkout.session.completed", bad)

	deadline := time.Now().Add(20 * time.Second)
	for {
		var outcome string
		err := bdb.NewSelect().Table("stripe_events").Column("outcome").Where("event_id = ?", "evt_e2e_ignored").Scan(ctx, &outcome)
		list, lerr := streams.NewDLQ(js).List(ctx, 0, 10)
		if err == nil && outcome == "ignored" && lerr == nil && len(list) == 1 {
			if list[0].EventID != "evt_e2e_unknown" || list[0].Reason == "" || list[0].Deliveries != 1 {
				t.Errorf("dead letter = %+v, want evt_e2e_unknown dead-lettered on its first delivery", list[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not applied after 20s (outcome %q, %v; dlq %d, %v)\nlogs:\n%s", outcome, err, len(list), lerr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after a graceful stop\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
