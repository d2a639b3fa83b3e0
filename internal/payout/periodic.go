package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/lease"
	"github.com/paystream/paystream/internal/ledger"
)

// LeaseBucket is the JetStream key-value bucket of the payout job's lease:
// which processor instance runs it this interval.
const LeaseBucket = "paystream_payouts_lease"

// releaseBatch is how many sales one release transaction moves.
const releaseBatch = 1000

// Job is one round of the processor group's payout work, in order: release
// the sales whose hold is over (so their money is available), run the
// payouts, read the health gauges, match Stripe's transfers with the
// payouts over the reconcile window, and verify the ledger when
// VerifyInterval has passed since this instance last did.
type Job struct {
	DB      *bun.DB
	Runner  *Runner
	Stripe  Transfers     // for the reconcile after the run
	Ledger  ledger.Config // PAYOUT_HOLD
	Config  Config
	Metrics *Metrics
	Log     *slog.Logger

	lastVerify time.Time
}

// Once runs one round. Each part's failure is logged and counted, and the
// next parts still run; the error joins them.
func (j *Job) Once(ctx context.Context) error {
	cfg := j.Config
	cfg.setDefaults()
	var errs []error
	released := 0
	for ctx.Err() == nil {
		n, err := ledger.ReleaseDue(ctx, j.DB, j.Ledger, cfg.Now(), releaseBatch)
		released += n
		j.Metrics.observeReleases(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("release: %w", err))
			j.Log.Error("payout job: releasing held sales failed; the next round tries again", "error", err)
			break
		}
		if n < releaseBatch {
			break
		}
	}
	sum, err := j.Runner.Run(ctx, RunOptions{})
	if err != nil {
		errs = append(errs, err)
		j.Log.Error("payout job: run failed", "run_id", sum.RunID, "error", err)
	}
	j.Log.Info("payout job: round done", "run_id", sum.RunID, "released", released, "created", sum.Created,
		"paid", sum.Paid, "failed", sum.Failed, "retrying", sum.Retrying, "errors", sum.Errors)
	if h, err := ReadHealth(ctx, j.DB, cfg.Now()); err != nil {
		errs = append(errs, err)
	} else {
		j.Metrics.observeHealth(h)
	}
	if cfg.ReconcileWindow > 0 && j.Stripe != nil {
		rep, err := Reconcile(ctx, j.DB, j.Stripe, cfg.Now().Add(-cfg.ReconcileWindow), j.Metrics)
		switch {
		case err != nil:
			errs = append(errs, err)
			j.Log.Warn("payout job: reconcile failed", "error", err)
		case rep.Differences() > 0:
			j.Log.Error("payout job: Stripe's transfers and the payouts differ; see `paystream payouts reconcile`",
				"missing", len(rep.Missing), "extra", len(rep.Extra), "amount", len(rep.Amount), "reversed", len(rep.Reversed))
		}
	}
	if now := cfg.Now(); cfg.VerifyInterval > 0 && now.Sub(j.lastVerify) >= cfg.VerifyInterval {
		diff, err := ledger.Verify(ctx, j.DB)
		j.Metrics.observeVerify(diff != nil, err, now)
		switch {
		case err != nil:
			errs = append(errs, err)
		case diff != nil:
			j.Log.Error("payout job: the ledger does not verify; see `paystream ledger verify`", "check", diff.Check,
				"subject", diff.Subject, "detail", diff.Detail)
		}
		if err == nil {
			j.lastVerify = now
		}
	}
	return errors.Join(errs...)
}

// Periodic runs j.Once every interval (plus up to 10% jitter, so instances
// do not line up) until ctx ends, then returns nil; the first round starts
// after one interval. With a lease (lease.NewKV on LeaseBucket, TTL
// the interval), one instance of the group runs per interval; a holder that
// crashes stops renewing and another takes over when its lease expires,
// resuming its open payouts with the same keys. The engine never relies on
// the lease for correctness: two rounds at once still pay each payout once.
func Periodic(ctx context.Context, interval time.Duration, j *Job, e lease.Elector) error {
	if interval <= 0 {
		return fmt.Errorf("payout: periodic interval %s must be positive", interval)
	}
	j.Log.Info("payout periodic mode on", "interval", interval.String(), "hold", j.Ledger.Hold.String(), "elected", e != nil)
	lease.Every(ctx, interval, e, j.Log, "payout", func(ctx context.Context) {
		if err := j.Once(ctx); err != nil && ctx.Err() == nil {
			j.Log.Warn("payout job: round finished with errors; the next round retries", "error", err)
		}
	})
	return nil
}
