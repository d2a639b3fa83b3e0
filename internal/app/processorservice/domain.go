package processorservice

// This file is the one place where the processor's consumer runtime meets
// the domain: the purchase handler applies events, the outbox relay publishes
// what they wrote to PURCHASES, the optional periodic reconcile recovers
// events Stripe never delivered, and the optional payout job releases held
// sales and pays creators and organizations.

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
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeclient"
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
// the purchase handler, the outbox relay and the periodic reconcile; tests
// wire fakes (WithDomain). The runtime itself knows nothing of purchases.
type Domain func(deps DomainDeps) (handling.Handler, []Companion, error)

// PurchaseDomain returns the Domain of c: the event handler of the purchase
// and payout (Connect webhook) families, the outbox relay always, the
// periodic reconcile when RECONCILE_INTERVAL > 0, the payout job when
// PAYOUT_INTERVAL > 0.
func PurchaseDomain(c processorconfig.Domain) Domain {
	return func(d DomainDeps) (handling.Handler, []Companion, error) {
		// The payout series exist whether the job runs or not, so the
		// dashboard and the alerts see them; the Connect webhooks' store
		// functions count in the same Metrics.
		pm := payout.NewMetrics(d.Reg)
		pf, err := purchase.NewFamily(c.Purchase, purchase.NewMetrics(d.Reg), d.Log.With("component", "purchase"))
		if err != nil {
			return nil, nil, fmt.Errorf("purchase family: %w", err)
		}
		payf, err := payout.NewFamily(pm, d.Log.With("component", "payout"))
		if err != nil {
			return nil, nil, fmt.Errorf("payout family: %w", err)
		}
		h, err := eventtx.New(d.DB, eventtx.Config{Now: c.Purchase.Now}, d.Log, pf, payf)
		if err != nil {
			return nil, nil, fmt.Errorf("event handler: %w", err)
		}
		relay, err := outbox.NewRelay(d.DB, d.JS, c.Relay, outbox.NewMetrics(d.Reg), d.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox relay: %w", err)
		}
		companions := []Companion{{Name: "outbox-relay", Run: relay.Run}}
		if rc := c.Reconcile; rc.Interval > 0 {
			lister, err := reconcile.NewStripeLister(rc.Stripe(), d.Log)
			if err != nil {
				return nil, nil, fmt.Errorf("reconcile: %w", err)
			}
			// One run per interval across the processor group, not per instance.
			lease, err := reconcile.NewKVLease(d.JS, rc.Interval, leaseHolder())
			if err != nil {
				return nil, nil, fmt.Errorf("reconcile: %w", err)
			}
			cfg := reconcile.Config{Since: rc.Window, Endpoint: rc.Endpoint,
				Index: reconcile.StreamIndex{JS: d.JS}, Metrics: reconcile.NewMetrics(d.Reg), Lease: lease}
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
	lease, err := reconcile.NewKVLeaseIn(d.JS, payout.LeaseBucket, c.Payout.Interval, leaseHolder())
	if err != nil {
		return Companion{}, err
	}
	job := &payout.Job{DB: d.DB, Runner: runner, Stripe: stripe, Ledger: c.Ledger, Config: c.Payout, Metrics: pm, Log: d.Log}
	return Companion{Name: "payouts", Run: func(ctx context.Context) error {
		return payout.Periodic(ctx, c.Payout.Interval, job, lease)
	}}, nil
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
