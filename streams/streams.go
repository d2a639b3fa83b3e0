// Package streams defines paystream's JetStream streams as code: their names,
// subjects and configuration, an idempotent Ensure that creates or updates
// them, and the publish helpers the edge and the tools share.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names of the design contract.
const (
	EventsStream    = "STRIPE_EVENTS"
	DLQStream       = "STRIPE_DLQ"
	PurchasesStream = "PURCHASES"
)

// Config shapes the streams (the three of the design contract and
// STRIPE_ADVISORIES, see AdvisoriesDefinition). Every field is settable through the
// environment (STREAM_*); see DefaultConfig for the reasons behind the defaults.
type Config struct {
	Storage         jetstream.StorageType
	Replicas        int
	DedupWindow     time.Duration
	EventsMaxAge    time.Duration
	DLQMaxAge       time.Duration
	PurchasesMaxAge time.Duration
}

// DefaultConfig returns the production defaults.
//
//   - File storage: an event the edge acknowledged to Stripe must survive a
//     broker restart. Memory storage exists only for throwaway benchmarks.
//   - Replicas 1: right for dev and a single broker; production runs a
//     three-node cluster with STREAM_REPLICAS=3 so one node can fail.
//   - Dedup window 2h: it removes the duplicates that come close together
//     (Stripe's first retries after a slow answer, two edges racing, our own
//     reconcile run). The broker keeps every id of the window in memory, so a
//     window as long as Stripe's 3-day retry horizon would cost memory in
//     proportion to traffic; the processor's stripe_events table is the
//     authoritative, unbounded idempotency key behind it.
//   - STRIPE_EVENTS keeps 7 days with limits retention (not work-queue): longer
//     than Stripe's 3-day retry horizon plus a weekend of processor outage, and
//     acked events stay readable for audits and for new consumers.
//   - STRIPE_DLQ keeps 30 days: dead letters wait for a human, who may be away.
//   - PURCHASES keeps 14 days so a downstream consumer that was down for a
//     week can still catch up from its durable consumer.
func DefaultConfig() Config {
	return Config{
		Storage:         jetstream.FileStorage,
		Replicas:        1,
		DedupWindow:     2 * time.Hour,
		EventsMaxAge:    7 * 24 * time.Hour,
		DLQMaxAge:       30 * 24 * time.Hour,
		PurchasesMaxAge: 14 * 24 * time.Hour,
	}
}

// Definitions returns the stream configurations Ensure applies.
func (c Config) Definitions() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "Verified Stripe webhook events, one message per Stripe event id",
			Subjects:    []string{EventsSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.EventsMaxAge,
			Duplicates:  c.DedupWindow,
			// A stream that reaches a size limit (an operator's max_bytes,
			// the account's or server's storage) must refuse new events —
			// the edge answers 503 and Stripe retries — never make room by
			// dropping old ones that may not be applied yet. MaxAge still
			// ages events out.
			Discard: jetstream.DiscardNew,
		},
		{
			Name:        DLQStream,
			Description: "Stripe events the processor could not apply, with the reason",
			Subjects:    []string{DLQSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
			Duplicates:  c.DedupWindow,
			// Full: refuse; the processor naks and never terminates an
			// event without its copy.
			Discard: jetstream.DiscardNew,
		},
		{
			Name:        PurchasesStream,
			Description: "Purchase domain events (CloudEvents JSON) relayed from the outbox",
			Subjects:    []string{PurchasesSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			MaxAge:      c.PurchasesMaxAge,
			Duplicates:  c.DedupWindow,
			// Full: refuse, and the outbox relay keeps the rows and retries.
			Discard: jetstream.DiscardNew,
		},
		c.AdvisoriesDefinition(),
	}
}

// Ensure creates the streams, or updates them to match c. It is idempotent
// and safe to run from every process at start-up.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	for _, sc := range c.Definitions() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// Check reports whether stream name exists, for readiness probes.
func Check(ctx context.Context, js jetstream.JetStream, name string) error {
	_, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s does not exist (run the processor or `paystream dev` to create it): %w", name, err)
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	return nil
}
