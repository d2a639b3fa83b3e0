package processorservice

// This file is the one place where the processor's consumer runtime meets
// the domain: the event handler applies events through the purchase and
// subscription families, the outbox relay publishes what they wrote to
// PURCHASES, the subscription sweeper announces access that ran out, the
// optional periodic reconcile recovers events Stripe never delivered, and the
// optional payout job releases held sales and pays creators and
// organizations.

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/lease"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/streams"
)

// Companion is a long-running part of a processor instance beside the
// consumer, e.g. the outbox relay. Run returns when ctx ends.
type Companion struct {
	Name string
	Run  func(ctx context.Context) error
}

// DomainDeps is what the domain side gets to build itself.
type DomainDeps struct {
	DB  *bun.DB
	JS  jetstream.JetStream
	Reg prometheus.Registerer
	Log *slog.Logger
}

// Domain builds the domain handler and its companions. PurchaseDomain wires
// the families, the outbox relay, the subscription sweeper and the periodic
// reconcile; tests wire fakes (WithDomain). The runtime itself knows nothing
// of purchases.
type Domain func(deps DomainDeps) (handling.Handler, []Companion, error)

// PurchaseDomain returns the Domain of c: one event handler over the
// purchase, subscription and payout (Connect webhook) families, the outbox
// relay and the subscription sweeper always, the periodic reconcile when
// RECONCILE_INTERVAL > 0, the payout job when PAYOUT_INTERVAL > 0.
func PurchaseDomain(c processorconfig.Domain) Domain {
	return func(d DomainDeps) (handling.Handler, []Companion, error) {
		// The payout series exist whether the job runs or not, so the
		// dashboard and the alerts see them; the Connect webhooks' store
		// functions count in the same Metrics.
		pm := payout.NewMetrics(d.Reg)
		h, sweeper, err := eventHandler(c, d, pm)
		if err != nil {
			return nil, nil, err
		}
		relay, err := outbox.NewRelay(d.DB, d.JS, c.Relay, outbox.NewMetrics(d.Reg), d.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox relay: %w", err)
		}
		companions := []Companion{{Name: "outbox-relay", Run: relay.Run}, {Name: "subscription-sweeper", Run: sweeper.Run}}
		if rc := c.Reconcile; rc.Interval > 0 {
			lister, err := reconcile.NewStripeLister(rc.Stripe(), d.Log)
			if err != nil {
				return nil, nil, fmt.Errorf("reconcile: %w", err)
			}
			// One run per interval across the processor group, not per instance.
			elector, err := lease.NewKV(d.JS, reconcile.LeaseBucket, rc.Interval, leaseHolder())
			if err != nil {
				return nil, nil, fmt.Errorf("reconcile: %w", err)
			}
			cfg := reconcile.Config{Since: rc.Window, Endpoint: rc.Endpoint,
				Index: reconcile.StreamIndex{JS: d.JS}, Metrics: reconcile.NewMetrics(d.Reg), Lease: elector}
			pub := streams.NewPublisher(d.JS)
			companions = append(companions, Companion{Name: "periodic-reconcile", Run: func(ctx context.Context) error {
				return reconcile.Periodic(ctx, rc.Interval, cfg, lister, pub, d.Log)
			}})
		}
		if c.Payout.Interval > 0 {
			job, err := payoutCompanion(c, d, pm)
			if err != nil {
				return nil, nil, fmt.Errorf("payouts: %w", err)
			}
			companions = append(companions, job)
		}
		return h, companions, nil
	}
}

// payoutCompanion is the periodic payout job: one instance of the group per
// PAYOUT_INTERVAL, elected through its own lease bucket.
func payoutCompanion(c processorconfig.Domain, d DomainDeps, pm *payout.Metrics) (Companion, error) {
	stripe, err := payout.NewStripe(stripeclient.Config{Key: c.Reconcile.SecretKey, APIBase: c.Reconcile.APIBase,
		MaxNetworkRetries: c.Reconcile.MaxNetworkRetries}, d.Log)
	if err != nil {
		return Companion{}, err
	}
	runner, err := payout.NewRunner(d.DB, stripe, c.Payout, pm, d.Log)
	if err != nil {
		return Companion{}, err
	}
	elector, err := lease.NewKV(d.JS, payout.LeaseBucket, c.Payout.Interval, leaseHolder())
	if err != nil {
		return Companion{}, err
	}
	job := &payout.Job{DB: d.DB, Runner: runner, Stripe: stripe, Ledger: c.Ledger, Config: c.Payout, Metrics: pm, Log: d.Log}
	return Companion{Name: "payouts", Run: func(ctx context.Context) error {
		return payout.Periodic(ctx, c.Payout.Interval, job, elector)
	}}, nil
}

// eventHandler is the event lifecycle over the purchase, subscription and
// payout families (one route per event type; the purchase routes of the
// types the first two both read hand the subscription family what is its;
// the payout family takes the Connect events and counts in payoutMetrics),
// and the subscription sweeper.
func eventHandler(c processorconfig.Domain, d DomainDeps, payoutMetrics *payout.Metrics) (*eventtx.Handler, *subscription.Sweeper, error) {
	sm := subscription.NewMetrics(d.Reg)
	fetcher, err := subscription.NewFetcher(c.Subscription, sm, d.Log)
	if err != nil {
		return nil, nil, err
	}
	if c.Subscription.Stripe.Key == "" {
		d.Log.Info("no STRIPE_SECRET_KEY: subscription events that need Stripe's present state (a tie, an undecidable payload) are " +
			"dead-lettered with reason " + subscription.ReasonRefetchUnconfigured + "; an invoice before its subscription's first event waits for it")
	}
	sf, err := subscription.NewFamily(c.Subscription, fetcher, sm, d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("subscription family: %w", err)
	}
	pc := c.Purchase
	pc.Subscriptions = sf
	pm := purchase.NewMetrics(d.Reg)
	pf, err := purchase.NewFamily(pc, pm, d.Log.With("component", "purchase"))
	if err != nil {
		return nil, nil, fmt.Errorf("purchase family: %w", err)
	}
	payf, err := payout.NewFamily(payoutMetrics, d.Log.With("component", "payout"))
	if err != nil {
		return nil, nil, fmt.Errorf("payout family: %w", err)
	}
	h, err := eventtx.New(d.DB, eventtx.Config{Now: pc.Now, Ledger: pm.Ledger()}, d.Log, pf, sf.EventFamily(), payf)
	if err != nil {
		return nil, nil, fmt.Errorf("event handler: %w", err)
	}
	sweeper, err := subscription.NewSweeper(d.DB, c.Subscription, sm, d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("subscription sweeper: %w", err)
	}
	return h, sweeper, nil
}

// leaseHolder names this instance in a lease (reconcile, payouts), for operators
// reading the bucket: the host name and a random suffix (two processes on
// one host are two holders).
func leaseHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "processor"
	}
	return host + "-" + uuid.NewString()[:8]
}
