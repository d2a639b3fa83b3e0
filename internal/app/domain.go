package app

// This file is the one place where the processor's consumer runtime meets
// the domain: the purchase handler applies events, the outbox relay publishes
// what they wrote to PURCHASES, and the optional periodic reconcile recovers
// events Stripe never delivered.

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/streams"
)

// DomainConfig is the domain side's share of the environment (PURCHASE_*,
// OUTBOX_*, RECONCILE_*, STRIPE_*), read with the rest before anything
// connects.
type DomainConfig struct {
	Purchase  purchase.Config
	Relay     outbox.RelayConfig
	Reconcile reconcile.Settings
}

// ParseDomain reads the domain settings from p; check p.Err afterwards.
func ParseDomain(p *config.Parser) DomainConfig {
	return DomainConfig{
		Purchase:  config.ParsePurchase(p),
		Relay:     config.ParseRelay(p),
		Reconcile: config.ParseReconcile(p, false),
	}
}

// Domain returns the Domain that builds the purchase handler and
// its companions: the outbox relay always, the periodic reconcile when
// RECONCILE_INTERVAL > 0.
func (c DomainConfig) Domain() Domain {
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
