package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

func TestStatusReportsLagDLQAndOutbox(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	bdb, dsn := testenv.DB(t)

	pub := streams.NewPublisher(js)
	for _, id := range []string{"evt_a", "evt_b", "evt_c"} {
		if _, err := pub.Publish(ctx, stripeevent.Event{ID: id, Type: "checkout.session.completed", Endpoint: "default", ReceivedAt: time.Now(), Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		Durable: streams.ProcessorConsumer, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "stripe.dlq.default.charge.refunded", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	row := &model.Outbox{ID: uuid.New(), Subject: "purchases.completed", EventType: "t", AggregateID: uuid.New(),
		Payload: model.JSON(`{}`), CreatedAt: time.Now().Add(-time.Minute)}
	if _, err := bdb.NewInsert().Model(row).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"NATS_URL": n.URL(), "DATABASE_URL": dsn})
	if err := run(ctx, []string{"status", "--json"}, env, &out, &errOut); err != nil {
		t.Fatalf("status: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var rep statusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if rep.Consumer == nil || rep.Consumer.Pending != 3 {
		t.Errorf("consumer = %+v, want pending 3", rep.Consumer)
	}
	depth := map[string]uint64{}
	for _, s := range rep.Streams {
		depth[s.Name] = s.Messages
	}
	if depth[streams.EventsStream] != 3 || depth[streams.DLQStream] != 1 {
		t.Errorf("stream depths = %v", depth)
	}
	if rep.Outbox == nil || rep.Outbox.Backlog != 1 || rep.Outbox.OldestAgeSec < 50 {
		t.Errorf("outbox = %+v", rep.Outbox)
	}
	if !rep.Schema.Current {
		t.Errorf("schema = %+v", rep.Schema)
	}

	out.Reset()
	if err := run(ctx, []string{"status"}, env, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STRIPE_EVENTS", "lag (pending) 3", "dead letters: 1", "outbox backlog: 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("human output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStatusFailsWhenBrokerDown(t *testing.T) {
	_, dsn := testenv.DB(t)
	var out, errOut bytes.Buffer
	env := config.MapEnv(map[string]string{"NATS_URL": "nats://127.0.0.1:1", "DATABASE_URL": dsn})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, []string{"status"}, env, &out, &errOut); err == nil {
		t.Fatalf("status succeeded with no broker:\n%s", out.String())
	}
}
