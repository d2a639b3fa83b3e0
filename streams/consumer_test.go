package streams_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func TestConsumerConfigValidate(t *testing.T) {
	ok := streams.DefaultConsumerConfig()
	tests := []struct {
		name    string
		mutate  func(*streams.ConsumerConfig)
		wantErr string // "" means valid
	}{
		{"defaults", func(*streams.ConsumerConfig) {}, ""},
		{"tiny ack wait", func(c *streams.ConsumerConfig) { c.AckWait = time.Millisecond }, "PROCESSOR_ACK_WAIT"},
		{"no ack pending", func(c *streams.ConsumerConfig) { c.MaxAckPending = 0 }, "PROCESSOR_MAX_ACK_PENDING"},
		{"one delivery", func(c *streams.ConsumerConfig) { c.MaxDeliver = 1 }, "PROCESSOR_MAX_DELIVER"},
		{"unlimited deliveries", func(c *streams.ConsumerConfig) { c.MaxDeliver = -1 }, "PROCESSOR_MAX_DELIVER"},
		{"empty backoff", func(c *streams.ConsumerConfig) { c.Backoff = nil }, "PROCESSOR_BACKOFF"},
		{"backoff too long", func(c *streams.ConsumerConfig) { c.MaxDeliver = 3 }, "PROCESSOR_BACKOFF"},
		{"negative delay", func(c *streams.ConsumerConfig) { c.Backoff = []time.Duration{time.Second, -1} }, "PROCESSOR_BACKOFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Backoff = append([]time.Duration(nil), ok.Backoff...)
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestNakDelayFollowsScheduleThenStays(t *testing.T) {
	c := streams.ConsumerConfig{Backoff: []time.Duration{time.Second, 5 * time.Second, time.Minute}}
	tests := []struct {
		deliveries uint64
		want       time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 5 * time.Second}, {3, time.Minute}, {4, time.Minute}, {1000, time.Minute}}
	for _, tt := range tests {
		if got := c.NakDelay(tt.deliveries); got != tt.want {
			t.Errorf("NakDelay(%d) = %s, want %s", tt.deliveries, got, tt.want)
		}
	}
}

func TestEnsureConsumerIsIdempotentAndKeepsAckWait(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	cfg := streams.DefaultConsumerConfig()
	for i := 0; i < 2; i++ {
		if _, err := streams.EnsureConsumer(ctx, js, cfg); err != nil {
			t.Fatalf("EnsureConsumer #%d: %v", i+1, err)
		}
	}
	cfg.MaxAckPending = 64
	cons, err := streams.EnsureConsumer(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Durable != streams.ProcessorConsumer || c.AckPolicy != jetstream.AckExplicitPolicy ||
		c.DeliverPolicy != jetstream.DeliverAllPolicy || c.FilterSubject != "stripe.events.>" {
		t.Errorf("consumer config = %+v", c)
	}
	// The server would replace AckWait with BackOff[0] if BackOff were set.
	if c.AckWait != 30*time.Second || len(c.BackOff) != 0 {
		t.Errorf("AckWait = %s, BackOff = %v; want 30s and no server-side backoff", c.AckWait, c.BackOff)
	}
	if c.MaxAckPending != 64 || c.MaxDeliver != 10 {
		t.Errorf("MaxAckPending = %d, MaxDeliver = %d; want 64, 10", c.MaxAckPending, c.MaxDeliver)
	}
	bad := cfg
	bad.MaxDeliver = 0
	if _, err := streams.EnsureConsumer(ctx, js, bad); err == nil {
		t.Error("EnsureConsumer accepted MaxDeliver 0")
	}
}
