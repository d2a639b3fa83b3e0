package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/paystream/paystream/internal/lease"
)

// LeaseBucket is the JetStream key-value bucket that holds the periodic
// reconcile's lease (lease.NewKV).
const LeaseBucket = "paystream_reconcile_lease"

// Periodic runs Run every interval (plus up to 10% random jitter, so several
// processor instances do not all page through the Stripe API at the same
// moment) until ctx ends, then returns nil. The first run starts after one
// interval: at start-up nothing has been missed that a one-shot
// `paystream reconcile` could not recover faster. A failed run is logged and
// counted in cfg.Metrics, never fatal: the next tick tries again, and the
// window (cfg.Since) must exceed interval so nothing falls between runs.
// Each run gets a fresh RunID. With cfg.Lease set, the instances elect one
// run per interval across the group (lease.Every).
func Periodic(ctx context.Context, interval time.Duration, cfg Config, lister Lister, pub Publisher, log *slog.Logger) error {
	if interval <= 0 {
		return fmt.Errorf("reconcile: periodic interval %s must be positive", interval)
	}
	if cfg.Since < interval {
		return fmt.Errorf("reconcile: window %s is shorter than the interval %s: events between runs would never be listed", cfg.Since, interval)
	}
	check := cfg
	check.setDefaults()
	if err := check.validate(); err != nil {
		return err
	}
	log.Info("reconcile periodic mode on", "interval", interval.String(), "window", cfg.Since.String(),
		"elected", cfg.Lease != nil)
	lease.Every(ctx, interval, cfg.Lease, log, "reconcile", func(ctx context.Context) {
		run := cfg
		run.RunID = "" // a fresh id per run
		// Progress lines are for terminals; the processor has logs and metrics.
		s, err := Run(ctx, run, lister, pub, io.Discard, log)
		if err != nil && ctx.Err() == nil {
			log.Error("reconcile periodic run failed; next run at the next interval", "run_id", s.RunID, "error", err)
		}
	})
	return nil
}
