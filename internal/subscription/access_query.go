package subscription

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/paystream/paystream/model"
)

// AccessQuery answers "may customer $1 see content $2 at $3, and through
// what" in one statement, so the access check stays one round trip:
//   - the content_access row of (customer, content) through its unique
//     index, with the purchase behind it (as the purchase-only check did);
//   - the subscription of the customer that grants the content the longest:
//     subscriptions_access_idx walks the customer's subscriptions whose
//     access_until is after $3 (newest first; a customer has a handful), each
//     plan by primary key, the content by primary key, and keeps the first
//     whose plan covers the content: same organization, and the plan's
//     creator or no creator (an organization plan). Deleted content is
//     granted by no plan.
//
// It always returns exactly one row; decideAccess picks the answer. The
// placeholders are $n, for database/sql or pgx directly (Bun would rewrite ?
// placeholders): run it on *sql.DB, *sql.Tx or bun.Tx's Tx.
const AccessQuery = `SELECT a.access_type, a.purchase_id, p.status, a.granted_at, a.expires_at, a.revoked_at,
	(a.revoked_at IS NULL AND (a.expires_at IS NULL OR a.expires_at > $3)) AS grant_active,
	s.id, s.status, s.access_until, s.started_at
FROM (SELECT $1::text AS customer_id, $2::uuid AS content_id) AS q
LEFT JOIN content_access a ON a.user_id = q.customer_id AND a.content_id = q.content_id
LEFT JOIN purchases p ON p.id = a.purchase_id
LEFT JOIN LATERAL (
	SELECT s.id, s.status, s.access_until, s.started_at
	FROM subscriptions s
	JOIN subscription_plans pl ON pl.id = s.plan_id
	JOIN content c ON c.id = q.content_id AND c.deleted_at IS NULL
		AND c.organization_id = pl.organization_id
		AND (pl.creator_id IS NULL OR pl.creator_id = c.creator_id)
	WHERE s.customer_id = q.customer_id AND s.access_until > $3
	ORDER BY s.access_until DESC, s.id
	LIMIT 1) AS s ON true`

// Access is the answer of the access check.
type Access struct {
	Found          bool   // false: no grant of any kind, now or before
	Active         bool   // access holds now
	Type           string // model.Access*: purchased, complimentary, subscription, preview
	PurchaseID     *uuid.UUID
	PurchaseStatus *string
	Since          *time.Time
	ExpiresAt      *time.Time // a subscription's access_until
	RevokedAt      *time.Time
	Subscription   *SubscriptionGrant // set when a subscription grants it
}

// SubscriptionGrant is the subscription behind an access.
type SubscriptionGrant struct {
	ID          string
	Status      string
	AccessUntil time.Time
}

// RowQuerier is *sql.DB, *sql.Tx or *sql.Conn.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// accessRow is AccessQuery's row.
type accessRow struct {
	GrantType      *string
	PurchaseID     *uuid.UUID
	PurchaseStatus *string
	GrantedAt      *time.Time
	ExpiresAt      *time.Time
	RevokedAt      *time.Time
	GrantActive    *bool
	SubID          *string
	SubStatus      *string
	SubUntil       *time.Time
	SubStarted     *time.Time
}

// CheckAccess runs AccessQuery for customer and content at now.
func CheckAccess(ctx context.Context, q RowQuerier, customer string, content uuid.UUID, now time.Time) (Access, error) {
	// pgtype.UUID: pgx encodes it directly, skipping uuid.UUID's string
	// round trip through driver.Valuer.
	acc, err := ScanAccess(q.QueryRowContext(ctx, AccessQuery, customer, pgtype.UUID{Bytes: content, Valid: true}, now).Scan)
	if err != nil {
		return Access{}, fmt.Errorf("check access of %q to %s: %w", customer, content, err)
	}
	return acc, nil
}

// ScanAccess reads one row of AccessQuery through scan (the Scan of a
// *sql.Row or of a pgx.Row) and decides the access it grants. It is the
// decision of CheckAccess, exported so a client of another driver (the
// access benchmark's direct pgx baseline) decides exactly as the API does.
func ScanAccess(scan func(dest ...any) error) (Access, error) {
	var r accessRow
	var pid uuid.NullUUID
	if err := scan(&r.GrantType, &pid, &r.PurchaseStatus, &r.GrantedAt, &r.ExpiresAt, &r.RevokedAt, &r.GrantActive,
		&r.SubID, &r.SubStatus, &r.SubUntil, &r.SubStarted); err != nil {
		return Access{}, err
	}
	if pid.Valid {
		r.PurchaseID = &pid.UUID
	}
	return decideAccess(r), nil
}

// decideAccess picks what grants access when several things do: a bought
// or given item (purchased, complimentary) is the customer's whatever
// happens to a membership, so it wins; then a subscription; then any other
// live grant (a preview is less than a membership); then a grant that
// ended, so the caller can say when.
func decideAccess(r accessRow) Access {
	grant := func(active bool) Access {
		return Access{Found: true, Active: active, Type: *r.GrantType, PurchaseID: r.PurchaseID,
			PurchaseStatus: r.PurchaseStatus, Since: utc(r.GrantedAt), ExpiresAt: utc(r.ExpiresAt), RevokedAt: utc(r.RevokedAt)}
	}
	hasGrant := r.GrantType != nil
	active := hasGrant && r.GrantActive != nil && *r.GrantActive
	if active && (*r.GrantType == model.AccessPurchased || *r.GrantType == model.AccessComplimentary) {
		return grant(true)
	}
	if r.SubID != nil && r.SubStatus != nil && r.SubUntil != nil {
		until := r.SubUntil.UTC()
		return Access{Found: true, Active: true, Type: model.AccessSubscription, Since: utc(r.SubStarted),
			ExpiresAt: &until, Subscription: &SubscriptionGrant{ID: *r.SubID, Status: *r.SubStatus, AccessUntil: until}}
	}
	if hasGrant {
		return grant(active)
	}
	return Access{}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
