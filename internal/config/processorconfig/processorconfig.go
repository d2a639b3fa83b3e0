// Package processorconfig maps the processor group's environment onto its
// settings: the shared ones (internal/config), the pool size, the consumer
// runtime's processor.Config and the domain's (purchase handler, outbox
// relay, periodic reconcile, payout job and ledger hold), whose defaults and
// rules are those packages'.
// It is apart from internal/config so the edge binary does not link the
// domain's Postgres and Stripe clients.
package processorconfig

import (
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/streams"
)

// DefaultAdminAddr is the processor's /metrics, /healthz, /readyz listener.
const DefaultAdminAddr = ":9091"

// Config holds the settings of the processor service (cmd/processor): the
// shared ones, its admin listener and pool size, the runtime's own
// processor.Config, embedded as every service's is, and the domain's.
type Config struct {
	config.Common
	AdminAddr        string // ADMIN_ADDR
	DBMaxConns       int    // DB_MAX_CONNS
	processor.Config        // PROCESSOR_*
	Domain                  // PURCHASE_*, SUBSCRIPTION_*, OUTBOX_*, RECONCILE_*, STRIPE_*, PAYOUT_*, LEDGER_*
}

// Domain is the domain side's share of the environment.
type Domain struct {
	Purchase     purchase.Config     // PURCHASE_*
	Subscription subscription.Config // SUBSCRIPTION_*, and the Stripe access reconcile's settings read
	Relay        outbox.RelayConfig  // OUTBOX_*
	Reconcile    reconcile.Settings  // RECONCILE_*, STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES
	Payout       payout.Config       // PAYOUT_* but PAYOUT_HOLD, LEDGER_VERIFY_INTERVAL
	Ledger       ledger.Config       // PAYOUT_HOLD
}

// Parse reads and validates the processor group's whole environment before
// anything connects. The error names every bad variable.
func Parse(getenv config.Getenv) (Config, error) {
	p := config.NewParser(getenv)
	def := streams.DefaultConsumerConfig()
	c := Config{
		Common:     config.ParseCommon(p),
		AdminAddr:  p.Addr("ADMIN_ADDR", DefaultAdminAddr),
		DBMaxConns: config.ParseDBMaxConns(p),
		Config: processor.Config{
			Consumer: streams.ConsumerConfig{
				AckWait:       p.Duration("PROCESSOR_ACK_WAIT", def.AckWait, time.Second, time.Hour),
				MaxAckPending: p.Int("PROCESSOR_MAX_ACK_PENDING", def.MaxAckPending, 1, 100000),
				MaxDeliver:    p.Int("PROCESSOR_MAX_DELIVER", def.MaxDeliver, 2, 1000),
				Backoff:       p.Durations("PROCESSOR_BACKOFF", def.Backoff),
			},
			HandleTimeout:   p.Duration("PROCESSOR_HANDLE_TIMEOUT", processor.DefaultHandleTimeout, 100*time.Millisecond, time.Hour),
			ShutdownTimeout: p.Duration("PROCESSOR_SHUTDOWN_TIMEOUT", processor.DefaultShutdownTimeout, time.Second, time.Hour),
			BatchSize:       p.Int("PROCESSOR_BATCH_SIZE", processor.DefaultBatchSize, 1, processor.MaxBatchSize),
			BatchWait:       p.Duration("PROCESSOR_BATCH_WAIT", processor.DefaultBatchWait, 0, time.Second),
		},
		Domain: Domain{
			Purchase:  ParsePurchase(p),
			Relay:     ParseRelay(p),
			Reconcile: ParseReconcile(p, false),
		},
	}
	c.Payout, c.Ledger = ParsePayout(p, c.Reconcile.SecretKey)
	// Each worker holds a connection for its transaction: by default as
	// many workers as the pool has connections.
	c.Workers = p.Int("PROCESSOR_WORKERS", c.DBMaxConns, 1, processor.MaxWorkers)
	c.PartialBatches = p.Int("PROCESSOR_PARTIAL_BATCHES", processor.DefaultPartialBatchesFor(c.Workers), 1, processor.MaxWorkers)
	if c.Workers > c.DBMaxConns {
		p.Fail("PROCESSOR_WORKERS", fmt.Sprint(c.Workers),
			fmt.Sprintf("must not exceed DB_MAX_CONNS=%d: each worker holds a connection for its transaction", c.DBMaxConns))
	}
	if c.HandleTimeout >= c.ShutdownTimeout {
		p.Fail("PROCESSOR_HANDLE_TIMEOUT", c.HandleTimeout.String(),
			fmt.Sprintf("must be shorter than PROCESSOR_SHUTDOWN_TIMEOUT=%s so an in-flight event can finish during shutdown", c.ShutdownTimeout))
	}
	// The refetch runs inside the event's transaction, whose deadline
	// (PROCESSOR_HANDLE_TIMEOUT) bounds it too.
	c.Subscription = ParseSubscription(p, c.Reconcile)
	p.Check(c.Config.Validate())
	return c, p.Err()
}
