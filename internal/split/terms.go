package split

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// InForce reports whether a window [from, until) holds at t; a nil until is
// open ended. The schema's exclusion constraints keep windows of one party
// from overlapping, so at most one agreement is in force at any t.
func InForce(from time.Time, until *time.Time, t time.Time) bool {
	return !t.Before(from) && (until == nil || t.Before(*until))
}

// TermsAt returns the rates in force at t for content of creatorID sold by
// organizationID: the organization's platform agreement, else the platform
// config, else DefaultPlatformBps; and the creator–organization agreement,
// else 0. It takes bun.IDB so it runs inside the purchase transaction.
func TermsAt(ctx context.Context, idb bun.IDB, organizationID uuid.UUID, creatorID string, t time.Time) (Terms, error) {
	terms := Terms{PlatformBps: DefaultPlatformBps}

	var org model.OrganizationPlatformAgreement
	err := inForce(idb.NewSelect().Model(&org).Where("organization_id = ?", organizationID), t).Scan(ctx)
	switch {
	case err == nil:
		terms.PlatformBps, terms.PlatformAgreementID = org.PlatformFeePercentage, &org.ID
	case errors.Is(err, sql.ErrNoRows):
		var cfg model.PlatformFeeConfig
		err := inForce(idb.NewSelect().Model(&cfg), t).Scan(ctx)
		switch {
		case err == nil:
			terms.PlatformBps, terms.PlatformFeeConfigID = cfg.PlatformFeePercentage, &cfg.ID
		case !errors.Is(err, sql.ErrNoRows):
			return Terms{}, fmt.Errorf("look up platform fee config at %s: %w", t.Format(time.RFC3339), err)
		}
	default:
		return Terms{}, fmt.Errorf("look up platform agreement of organization %s: %w", organizationID, err)
	}

	var co model.CreatorOrganizationAgreement
	err = inForce(idb.NewSelect().Model(&co).
		Where("creator_id = ?", creatorID).Where("organization_id = ?", organizationID), t).Scan(ctx)
	switch {
	case err == nil:
		terms.OrganizationBps, terms.CreatorOrgAgreementID = co.OrganizationFeePercentage, &co.ID
	case !errors.Is(err, sql.ErrNoRows):
		return Terms{}, fmt.Errorf("look up agreement of creator %q with organization %s: %w", creatorID, organizationID, err)
	}
	return terms, nil
}

// SplitAt looks up the terms in force at t and computes the split of amount.
func SplitAt(ctx context.Context, idb bun.IDB, organizationID uuid.UUID, creatorID string, amount int64, t time.Time) (Split, error) {
	terms, err := TermsAt(ctx, idb, organizationID, creatorID, t)
	if err != nil {
		return Split{}, err
	}
	return Compute(amount, terms)
}

// inForce restricts q to the row whose window holds at t. The ORDER BY only
// makes the choice deterministic should the exclusion constraint ever be
// dropped.
func inForce(q *bun.SelectQuery, t time.Time) *bun.SelectQuery {
	return q.Where("effective_from <= ?", t).
		Where("(effective_until IS NULL OR effective_until > ?)", t).
		OrderExpr("effective_from DESC").Limit(1)
}
