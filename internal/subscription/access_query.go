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
const AccessQuery = accessColumns + `
FROM (SELECT $1::text AS customer_id, $2::uuid AS content_id) AS q` + accessJoins

// AccessBatchQuery is AccessQuery for many (customer, content) pairs at
// once: $1 the customers and $2 the contents, as parallel arrays, $3 the
// time. It returns exactly one row per pair, in the arrays' order, each
// AccessQuery's row followed by the pair's 1-based position. Both queries
// are the same text around their source of pairs, so they decide alike;
// the joins are LATERAL, so each pair is a handful of index lookups
// however many pairs the planner expects.
//
// The arrays reach unnest through sub-selects on purpose: given the arrays
// themselves, the planner sizes each custom plan by their length, finds it
// cheaper than the generic plan for small batches and plans the statement
// again on every execution (the pg_prepared_statements counts showed only
// custom plans, and the batches cost more CPU per check than single
// statements). Behind a sub-select every execution looks alike, and after
// its first five a prepared statement keeps the generic plan.
const AccessBatchQuery = accessColumns + `, q.n
FROM unnest((SELECT $1::text[]), (SELECT $2::uuid[])) WITH ORDINALITY AS q(customer_id, content_id, n)` + accessJoins + `
ORDER BY q.n`

// accessColumns and accessJoins are the text AccessQuery and
// AccessBatchQuery share around their source q(customer_id, content_id).
const (
	accessColumns = `SELECT a.access_type, a.purchase_id, a.purchase_status, a.granted_at, a.expires_at, a.revoked_at,
	(a.revoked_at IS NULL AND (a.expires_at IS NULL OR a.expires_at > $3)) AS grant_active,
	s.id, s.status, s.access_until, s.started_at`
	accessJoins = `
LEFT JOIN LATERAL (
	SELECT a.access_type, a.purchase_id, p.status AS purchase_status, a.granted_at, a.expires_at, a.revoked_at
	FROM content_access a LEFT JOIN purchases p ON p.id = a.purchase_id
	WHERE a.user_id = q.customer_id AND a.content_id = q.content_id) AS a ON true
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
)

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

// AccessKey is one question of a batch: may Customer see Content.
type AccessKey struct {
	Customer string
	Content  uuid.UUID
}

// Querier is *sql.DB, *sql.Tx or *sql.Conn.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// CheckAccessBatch answers every key at now in one statement
// (AccessBatchQuery): the i-th answer is keys[i]'s, decided as CheckAccess
// decides it. A key may appear more than once.
func CheckAccessBatch(ctx context.Context, q Querier, keys []AccessKey, now time.Time) ([]Access, error) {
	customers := make([]string, len(keys))
	contents := make([]pgtype.UUID, len(keys))
	for i, k := range keys {
		customers[i], contents[i] = k.Customer, pgtype.UUID{Bytes: k.Content, Valid: true}
	}
	rows, err := q.QueryContext(ctx, AccessBatchQuery, customers, contents, now)
	if err != nil {
		return nil, fmt.Errorf("check access of %d pairs: %w", len(keys), err)
	}
	defer rows.Close()
	out := make([]Access, 0, len(keys))
	for rows.Next() {
		var n int64
		acc, err := scanAccess(rows.Scan, &n)
		if err != nil {
			return nil, fmt.Errorf("check access of %d pairs: %w", len(keys), err)
		}
		if n != int64(len(out))+1 {
			return nil, fmt.Errorf("check access of %d pairs: row %d answers pair %d", len(keys), len(out)+1, n)
		}
		out = append(out, acc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check access of %d pairs: %w", len(keys), err)
	}
	if len(out) != len(keys) {
		return nil, fmt.Errorf("check access of %d pairs: %d rows", len(keys), len(out))
	}
	return out, nil
}

// ScanAccess reads one row of AccessQuery through scan (the Scan of a
// *sql.Row or of a pgx.Row) and decides the access it grants. It is the
// decision of CheckAccess, exported so a client of another driver (the
// access benchmark's direct pgx baseline) decides exactly as the API does.
func ScanAccess(scan func(dest ...any) error) (Access, error) {
	return scanAccess(scan)
}

// scanAccess is ScanAccess with more columns after AccessQuery's (the
// batch's position).
func scanAccess(scan func(dest ...any) error, more ...any) (Access, error) {
	var r accessRow
	var pid uuid.NullUUID
	if err := scan(append([]any{&r.GrantType, &pid, &r.PurchaseStatus, &r.GrantedAt, &r.ExpiresAt, &r.RevokedAt, &r.GrantActive,
		&r.SubID, &r.SubStatus, &r.SubUntil, &r.SubStarted}, more...)...); err != nil {
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
