// Package pipeline is the one place where the processor's consumer runtime
// meets the domain: the purchase handler applies events, the outbox relay
// publishes what they wrote to PURCHASES, and the optional periodic reconcile
// recovers events Stripe never delivered. cmd/processor, the all-in-one dev
// mode and the load tool all build the processor through it.
package pipeline

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/streams"
)

// Config is the domain side's share of the environment (PURCHASE_*,
// OUTBOX_*, RECONCILE_*, STRIPE_*), read with the rest before anything
// connects.
type Config struct {
	Purchase  purchase.Config
	Relay     outbox.RelayConfig
	Reconcile config.Reconcile
}

// Parse reads the domain settings from p; check p.Err afterwards.
func Parse(p *config.Parser) Config {
	return Config{
		Purchase:  purchase.ParseConfig(p),
		Relay:     outbox.ParseRelayConfig(p),
		Reconcile: config.ParseReconcile(p, false),
	}
}

// Domain returns the processor.Domain that builds the purchase handler and
// its companions: the outbox relay always, the periodic reconcile when
// RECONCILE_INTERVAL > 0.
func (c Config) Domain() processor.Domain {
	return func(d processor.DomainDeps) (handling.Handler, []processor.Companion, error) {
		h, err := purchase.NewHandler(d.DB, c.Purchase, purchase.NewMetrics(d.Reg), d.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("purchase handler: %w", err)
		}
		relay, err := outbox.NewRelay(d.DB, d.JS, c.Relay, outbox.NewMetrics(d.Reg), d.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox relay: %w", err)
		}
		companions := []processor.Companion{{Name: "outbox-relay", Run: relay.Run}}
		if rc := c.Reconcile; rc.Interval > 0 {
			lister, err := reconcile.NewStripeLister(reconcile.StripeConfig{Key: rc.SecretKey, APIBase: rc.APIBase,
				MaxNetworkRetries: rc.MaxNetworkRetries}, d.Log)
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
			companions = append(companions, processor.Companion{Name: "periodic-reconcile", Run: func(ctx context.Context) error {
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
