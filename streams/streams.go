// Package streams defines paystream's JetStream streams as code: their names,
// subjects and configuration, an idempotent Ensure that creates or updates
// them, and the publish helpers the edge and the tools share.
package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names of the design contract.
const (
	EventsStream    = "STRIPE_EVENTS"
	DLQStream       = "STRIPE_DLQ"
	PurchasesStream = "PURCHASES"
)

// DomainSubjectPrefixes are the subject prefixes of the domain events the
// outbox relays to PURCHASES, one per family: purchases, subscriptions,
// creator payouts and their payees. A consumer of one family filters on its
// prefix (SubscribePurchases takes purchases.> only), so adding a family
// never reaches the consumers of another.
var DomainSubjectPrefixes = []string{PurchasesSubjectPrefix, "subscriptions.", "payouts.", "payees."}

// IsDomainSubject reports whether subject is a literal subject under one of
// DomainSubjectPrefixes (no wildcard, no space).
func IsDomainSubject(subject string) bool {
	if strings.ContainsAny(subject, "*> \t\r\n") {
		return false
	}
	for _, p := range DomainSubjectPrefixes {
		if len(subject) > len(p) && strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

// domainSubjects are the PURCHASES stream's subjects: prefix.> of each
// domain family.
func domainSubjects() []string {
	out := make([]string, len(DomainSubjectPrefixes))
	for i, p := range DomainSubjectPrefixes {
		out[i] = p + ">"
	}
	return out
}

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
//   - Dedup window 2h: it drops at the broker the duplicates that come within
//     hours: Stripe's at-least-once copies and two edges racing (seconds), the
//     outbox relay's and the DLQ copy's re-publishes after a lost PubAck
//     (within the relay's 30 s and the processor's 15-minute backoffs), and
//     Stripe's retries of events whose 200 came too late, which come in bursts
//     after a slow broker, over the hours of the recovery. A duplicate after
//     the window costs one stored message and one processor pass that finds
//     its id in stripe_events and acks it without effects (on the set-based
//     path, its batch is applied again without it): the table is the
//     authoritative, unbounded idempotency key; the window saves that work.
//     The price is memory: nats-server keeps every id of the window in its
//     heap, ~110 B each (BenchmarkDedupMemoryPerID; twice that in RSS at
//     GOGC=100, more while it grows), and an event has two ids, its evt_ id on
//     STRIPE_EVENTS and its outbox id on PURCHASES. So each broker (every
//     replica) holds about 0.45 KB × events/s × window: 2h at 10 events/s ≈ 32
//     MB, at 100 events/s ≈ 320 MB. Size the broker for it, or shorten the
//     window where memory is tighter than Postgres: Stripe's retries run for 3
//     days, no window covers them all.
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
			Description: "Domain events (CloudEvents JSON) relayed from the outbox: purchases, subscriptions, payouts, payees",
			Subjects:    domainSubjects(),
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
//
// A stream that exists is updated only when one of the fields c defines
// differs (see manage), and the update starts from the stream's own
// configuration: what c does not define, such as an operator's max_bytes,
// stays as the operator set it. An Ensure that changes nothing sends no
// update, so processes starting together do not rewrite the streams'
// configuration while another creates its consumer (nats-server 2.15.2 reads
// the file store's configuration for a new consumer without the lock its
// stream update writes it under: a data race the race detector caught in
// this project's tests).
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	for _, want := range c.Definitions() {
		if err := ensure(ctx, js, want); err != nil {
			return fmt.Errorf("ensure stream %s: %w", want.Name, err)
		}
	}
	return nil
}

// ensure creates one stream, or brings the fields want defines up to date.
// When two processes find the stream missing at once, one creates it; the
// other's create fails with "name already in use" (a create with the same
// configuration succeeds) and it looks again, instead of sending an update.
func ensure(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, want.Name)
		switch {
		case err == nil:
			cfg := s.CachedInfo().Config
			if !manage(&cfg, want) {
				return nil // up to date
			}
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("update: %w", err)
			}
			return nil
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return err
		}
		_, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
			continue // created meanwhile by another process
		}
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		return nil
	}
}

// manage sets the fields of cfg that Definitions defines to want's values
// and reports whether any changed. Replicas and Duplicates of zero mean the
// server's default (one replica; a dedup window of two minutes or MaxAge),
// which the server fills in, so zero leaves them alone.
// TestManageCoversEveryDefinedField fails when a definition sets a field
// manage does not know.
func manage(cfg *jetstream.StreamConfig, want jetstream.StreamConfig) (changed bool) {
	set := func(differs bool, apply func()) {
		if differs {
			apply()
			changed = true
		}
	}
	set(cfg.Description != want.Description, func() { cfg.Description = want.Description })
	set(!slices.Equal(cfg.Subjects, want.Subjects), func() { cfg.Subjects = slices.Clone(want.Subjects) })
	set(cfg.Retention != want.Retention, func() { cfg.Retention = want.Retention })
	set(cfg.Storage != want.Storage, func() { cfg.Storage = want.Storage })
	set(want.Replicas != 0 && cfg.Replicas != want.Replicas, func() { cfg.Replicas = want.Replicas })
	set(cfg.MaxAge != want.MaxAge, func() { cfg.MaxAge = want.MaxAge })
	set(want.Duplicates != 0 && cfg.Duplicates != want.Duplicates, func() { cfg.Duplicates = want.Duplicates })
	set(cfg.Discard != want.Discard, func() { cfg.Discard = want.Discard })
	return changed
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
