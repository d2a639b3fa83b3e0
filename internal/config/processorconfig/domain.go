package processorconfig

import (
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/subscription"
)

// ParsePurchase maps the purchase handler's variables onto purchase.Config:
//
//	PURCHASE_REVOKE_ON_PARTIAL_REFUND  false  revoke access on any partial refund
//
// Now stays time.Now.
func ParsePurchase(p *config.Parser) purchase.Config {
	return purchase.Config{Access: purchase.AccessPolicy{RevokeOnPartialRefund: p.Bool("PURCHASE_REVOKE_ON_PARTIAL_REFUND", false)}}
}

// ParseRelay maps the outbox relay's variables onto outbox.RelayConfig; the
// defaults are the relay's:
//
//	OUTBOX_POLL_INTERVAL    200ms  idle wait between scans (10ms–1m)
//	OUTBOX_BATCH_SIZE       100    rows per transaction (1–10000)
//	OUTBOX_PUBLISH_TIMEOUT  5s     wait for one PubAck (100ms–1m)
//	OUTBOX_MAX_BACKOFF      30s    longest wait after failures (1s–10m)
//	OUTBOX_RETENTION        168h   delete published rows older than this (1h–8760h)
func ParseRelay(p *config.Parser) outbox.RelayConfig {
	return outbox.RelayConfig{
		PollInterval:   p.Duration("OUTBOX_POLL_INTERVAL", outbox.DefaultPollInterval, 10*time.Millisecond, time.Minute),
		BatchSize:      p.Int("OUTBOX_BATCH_SIZE", outbox.DefaultBatchSize, 1, 10000),
		PublishTimeout: p.Duration("OUTBOX_PUBLISH_TIMEOUT", outbox.DefaultPublishTimeout, 100*time.Millisecond, time.Minute),
		MaxBackoff:     p.Duration("OUTBOX_MAX_BACKOFF", outbox.DefaultMaxBackoff, time.Second, 10*time.Minute),
		Retention:      p.Duration("OUTBOX_RETENTION", outbox.DefaultRetention, time.Hour, 365*24*time.Hour),
	}
}

// ParseSubscription maps the processor side of subscriptions onto
// subscription.Config; the defaults and bounds are subscription's:
//
//	SUBSCRIPTION_REFETCH_TIMEOUT  5s   bound of one Stripe refetch, retries included (1s–1m)
//	SUBSCRIPTION_SWEEP_INTERVAL   15s  how often ended access is announced (1s–1h)
//
// The refetch uses the Stripe access of rc (STRIPE_SECRET_KEY,
// STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES, read once for reconcile);
// without a key it is off (subscription.NewFetcher says what that means).
func ParseSubscription(p *config.Parser, rc reconcile.Settings) subscription.Config {
	c := subscription.Config{
		Stripe: rc.Stripe(),
		RefetchTimeout: p.Duration("SUBSCRIPTION_REFETCH_TIMEOUT", subscription.DefaultRefetchTimeout,
			subscription.MinRefetchTimeout, subscription.MaxRefetchTimeout),
		SweepInterval: p.Duration("SUBSCRIPTION_SWEEP_INTERVAL", subscription.DefaultSweepInterval,
			subscription.MinSweepInterval, subscription.MaxSweepInterval),
	}
	p.Check(c.Validate())
	return c
}
