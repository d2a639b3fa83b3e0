package processorservice

// This file is the one place where the processor's consumer runtime meets
// the domain: the purchase handler applies events, the outbox relay publishes
// what they wrote to PURCHASES, and the optional periodic reconcile recovers
// events Stripe never delivered.

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
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
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

// PurchaseDomain returns the Domain of c: the purchase handler, the outbox
// relay always, the periodic reconcile when RECONCILE_INTERVAL > 0.
func PurchaseDomain(c processorconfig.Domain) Domain {
	return func(d DomainDeps) (handling.Handler, []Companion, error) {
		h, err := purchase.NewHandler(d.DB, c.Purchase, purchase.NewMetrics(d.Reg), d.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("purchase handler: %w", err)
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
		return h, companions, nil
	}
}

// leaseHolder names this instance in the reconcile lease, for operators
// reading the bucket: the host name and a random suffix (two processes on
// one host are two holders).
func leaseHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "processor"
	}
	return host + "-" + uuid.NewString()[:8]
}
