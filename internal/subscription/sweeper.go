package subscription

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/model"
)

// sweepBatch is how many ended accesses one sweep transaction announces.
const sweepBatch = 500

// Sweeper announces access that ran out: every SweepInterval it finds the
// subscriptions whose access_until has passed and whose end is not
// announced yet (expired_at NULL, subscriptions_expiry_due_idx), writes
// their subscriptions.expired events to the outbox and sets expired_at, in
// one transaction per batch. It also refreshes the subscription gauges.
//
// Every processor instance runs one. They need no election: a sweep locks
// the rows it announces FOR UPDATE SKIP LOCKED, so two sweepers (or a
// sweeper and an event changing the subscription, which takes the same row
// lock) never take the same row, and each end is announced exactly once.
type Sweeper struct {
	db  *bun.DB
	cfg Config
	m   *Metrics
	log *slog.Logger

	gauges gauges
}

// NewSweeper returns the sweeper of cfg on bdb.
func NewSweeper(bdb *bun.DB, cfg Config, m *Metrics, log *slog.Logger) (*Sweeper, error) {
	if bdb == nil || m == nil || log == nil {
		return nil, errors.New("subscription sweeper: db, metrics and logger are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Sweeper{db: bdb, cfg: cfg, m: m, log: log.With("component", "subscription-sweeper")}, nil
}

// Run sweeps every SweepInterval until ctx ends. A failed sweep is logged
// and tried again at the next tick: what it did not announce stays due.
func (s *Sweeper) Run(ctx context.Context) error {
	s.log.Info("subscription sweeper on", "interval", s.cfg.SweepInterval.String())
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("subscription sweep failed; retrying at the next interval", "announced", n, "error", err)
		}
		if err := s.refreshGauges(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("subscription gauges not refreshed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep announces every ended access due at the clock's now, a batch per
// transaction, and returns how many it announced.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepBatch(ctx, s.cfg.Now().UTC())
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// sweepBatch announces up to sweepBatch ended accesses due at now in one
// transaction.
func (s *Sweeper) sweepBatch(ctx context.Context, now time.Time) (int, error) {
	var subs []model.Subscription
	var reasons []string
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		subs, reasons = nil, nil
		err := tx.NewSelect().Model(&subs).Relation("Plan").
			Where("?TableAlias.expired_at IS NULL").Where("?TableAlias.access_until IS NOT NULL").
			Where("?TableAlias.access_until <= ?", now).
			OrderExpr("?TableAlias.access_until").Limit(sweepBatch).
			For("UPDATE OF ?TableAlias SKIP LOCKED").Scan(ctx)
		if err != nil {
			return fmt.Errorf("select ended access: %w", err)
		}
		if len(subs) == 0 {
			return nil
		}
		rows := make([]model.Outbox, len(subs))
		ids := make([]string, len(subs))
		for i := range subs {
			sub := &subs[i]
			d := dataOf(sub, sub.Status, "")
			d.Reason = endReason(sub)
			reasons = append(reasons, d.Reason)
			if rows[i], err = outbox.NewRow(ctx, Subject(EventExpired), EventType(EventExpired), AggregateID(sub.ID), d, now); err != nil {
				return err
			}
			ids[i] = sub.ID
		}
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return fmt.Errorf("insert %d expired events: %w", len(rows), err)
		}
		_, err = tx.NewUpdate().Model((*model.Subscription)(nil)).Set("expired_at = ?", now).
			Where("id IN (?)", bun.In(ids)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark %d subscriptions expired: %w", len(ids), err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range reasons {
		s.m.events.WithLabelValues(EventExpired).Inc()
		s.m.churn.WithLabelValues(EventExpired, r).Inc()
	}
	if len(subs) > 0 {
		s.log.Info("subscription access ended", "announced", len(subs))
	}
	return len(subs), nil
}
