package subscription

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// PlanConflict is a plan SeedPlans found with other values than it would
// write: it leaves the row alone and says what differs.
type PlanConflict struct{ What string }

// Error implements error.
func (c PlanConflict) Error() string { return c.What }

// SeededPlan is one plan SeedPlans made exist, and whether it created it.
type SeededPlan struct {
	Plan    model.SubscriptionPlan
	Created bool
}

// SeedPlans makes plans exist, by id, in one transaction: a plan missing is
// inserted, one present with the same values is left alone, one present
// with other values is a PlanConflict and nothing is written. The schema's
// rules (price, interval, grace days) refuse a bad plan.
func SeedPlans(ctx context.Context, bdb *bun.DB, plans ...model.SubscriptionPlan) ([]SeededPlan, error) {
	var out []SeededPlan
	err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = out[:0]
		for _, want := range plans {
			var have model.SubscriptionPlan
			err := tx.NewSelect().Model(&have).Where("id = ?", want.ID).For("UPDATE").Scan(ctx)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.NewInsert().Model(&want).On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
					return fmt.Errorf("seed plan %s: %w", want.ID, err)
				}
				out = append(out, SeededPlan{Plan: want, Created: true})
				continue
			case err != nil:
				return fmt.Errorf("seed plan %s: %w", want.ID, err)
			}
			if d := planDiff(have, want); d != "" {
				return PlanConflict{What: fmt.Sprintf("subscription plan %s exists with %s; left alone", want.ID, d)}
			}
			out = append(out, SeededPlan{Plan: have})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// planDiff describes how have differs from want in what a seed sets, or "".
func planDiff(have, want model.SubscriptionPlan) string {
	str := func(p *string) string {
		if p == nil {
			return "(none)"
		}
		return *p
	}
	switch {
	case have.OrganizationID != want.OrganizationID:
		return fmt.Sprintf("organization %s, not %s", have.OrganizationID, want.OrganizationID)
	case str(have.CreatorID) != str(want.CreatorID):
		return fmt.Sprintf("creator %s, not %s", str(have.CreatorID), str(want.CreatorID))
	case have.Name != want.Name:
		return fmt.Sprintf("name %q, not %q", have.Name, want.Name)
	case have.PriceCents != want.PriceCents || have.Currency != want.Currency:
		return fmt.Sprintf("price %d %s, not %d %s", have.PriceCents, have.Currency, want.PriceCents, want.Currency)
	case have.Interval != want.Interval || have.IntervalCount != want.IntervalCount:
		return fmt.Sprintf("interval %d %s, not %d %s", have.IntervalCount, have.Interval, want.IntervalCount, want.Interval)
	case have.TrialDays != want.TrialDays || have.GraceDays != want.GraceDays:
		return fmt.Sprintf("trial %d / grace %d days, not %d / %d", have.TrialDays, have.GraceDays, want.TrialDays, want.GraceDays)
	}
	return ""
}
