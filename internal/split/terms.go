package split

import (
	"context"
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
//
// The three lookups run as one statement (one LEFT JOIN LATERAL each): on a
// loaded database every statement costs a round trip of about the same
// price, and this one runs for every purchase.
func TermsAt(ctx context.Context, idb bun.IDB, organizationID uuid.UUID, creatorID string, t time.Time) (Terms, error) {
	var r termsRow
	q := termsColumns + " FROM (SELECT 1) AS one" + termsLaterals("?", "?")
	err := idb.NewRaw(q, organizationID, t, t, t, t, creatorID, organizationID, t, t).Scan(ctx, &r)
	if err != nil {
		return Terms{}, fmt.Errorf("look up terms of creator %q with organization %s at %s: %w",
			creatorID, organizationID, t.Format(time.RFC3339), err)
	}
	return r.terms(), nil
}

// ContentTermsAt returns content id, soft-deleted or not (check DeletedAt),
// with the terms TermsAt would return at t for its creator and organization,
// in one statement: a purchase needs both, and saves a round trip. Only ID,
// CreatorID, OrganizationID and DeletedAt of the content are read. A missing
// content is an error matching sql.ErrNoRows.
func ContentTermsAt(ctx context.Context, idb bun.IDB, contentID uuid.UUID, t time.Time) (model.Content, Terms, error) {
	var r struct {
		termsRow
		ID             uuid.UUID  `bun:"id"`
		CreatorID      string     `bun:"creator_id"`
		OrganizationID uuid.UUID  `bun:"organization_id"`
		DeletedAt      *time.Time `bun:"deleted_at"`
	}
	q := termsColumns + ", c.id, c.creator_id, c.organization_id, c.deleted_at FROM content AS c" +
		termsLaterals("c.organization_id", "c.creator_id") + " WHERE c.id = ?"
	if err := idb.NewRaw(q, t, t, t, t, t, t, contentID).Scan(ctx, &r); err != nil {
		return model.Content{}, Terms{}, fmt.Errorf("look up content %s and its terms at %s: %w", contentID, t.Format(time.RFC3339), err)
	}
	c := model.Content{ID: r.ID, CreatorID: r.CreatorID, OrganizationID: r.OrganizationID, DeletedAt: r.DeletedAt}
	return c, r.terms(), nil
}

// termsColumns selects the three agreements of termsLaterals, each or NULLs.
const termsColumns = `SELECT
	opa.id AS org_agreement_id, opa.platform_fee_percentage AS org_platform_bps,
	pfc.id AS config_id, pfc.platform_fee_percentage AS config_platform_bps,
	coa.id AS creator_agreement_id, coa.organization_fee_percentage AS organization_bps`

// termsLaterals joins, at one time, the organization's platform agreement,
// the platform config and the creator–organization agreement in force. org
// and creator are SQL expressions ("?" or a column). Each lateral is the
// window rule of InForce; the ORDER BY only makes the choice deterministic
// should an exclusion constraint ever be dropped. Placeholders, in order:
// [org], t, t, t, t, [creator, org], t, t.
func termsLaterals(org, creator string) string { return termsLateralsAt(org, creator, "?") }

// termsLateralsAt is termsLaterals judged at the SQL expression at ("?" or a
// column), so one statement can look up terms at many times.
func termsLateralsAt(org, creator, at string) string {
	window := ` AND effective_from <= ` + at + ` AND (effective_until IS NULL OR effective_until > ` + at + `)
	ORDER BY effective_from DESC LIMIT 1`
	return `
LEFT JOIN LATERAL (
	SELECT id, platform_fee_percentage FROM organization_platform_agreements
	WHERE organization_id = ` + org + window + `) AS opa ON true
LEFT JOIN LATERAL (
	SELECT id, platform_fee_percentage FROM platform_fee_config
	WHERE true` + window + `) AS pfc ON true
LEFT JOIN LATERAL (
	SELECT id, organization_fee_percentage FROM creator_organization_agreements
	WHERE creator_id = ` + creator + ` AND organization_id = ` + org + window + `) AS coa ON true`
}

// termsRow is the one row of termsQuery.
type termsRow struct {
	OrgAgreementID     *uuid.UUID `bun:"org_agreement_id"`
	OrgPlatformBps     *int       `bun:"org_platform_bps"`
	ConfigID           *uuid.UUID `bun:"config_id"`
	ConfigPlatformBps  *int       `bun:"config_platform_bps"`
	CreatorAgreementID *uuid.UUID `bun:"creator_agreement_id"`
	OrganizationBps    *int       `bun:"organization_bps"`
}

// terms applies the precedence: the organization's agreement over the
// platform config over DefaultPlatformBps; the config's id is kept only when
// the config applied.
func (r termsRow) terms() Terms {
	terms := Terms{PlatformBps: DefaultPlatformBps}
	switch {
	case r.OrgAgreementID != nil && r.OrgPlatformBps != nil:
		terms.PlatformBps, terms.PlatformAgreementID = *r.OrgPlatformBps, r.OrgAgreementID
	case r.ConfigID != nil && r.ConfigPlatformBps != nil:
		terms.PlatformBps, terms.PlatformFeeConfigID = *r.ConfigPlatformBps, r.ConfigID
	}
	if r.CreatorAgreementID != nil && r.OrganizationBps != nil {
		terms.OrganizationBps, terms.CreatorOrgAgreementID = *r.OrganizationBps, r.CreatorAgreementID
	}
	return terms
}

// SplitAt looks up the terms in force at t and computes the split of amount.
func SplitAt(ctx context.Context, idb bun.IDB, organizationID uuid.UUID, creatorID string, amount int64, t time.Time) (Split, error) {
	terms, err := TermsAt(ctx, idb, organizationID, creatorID, t)
	if err != nil {
		return Split{}, err
	}
	return Compute(amount, terms)
}
