package purchase

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// stateOf is the lifecycle state of p.
func stateOf(p *model.Purchase) State {
	s := State{Status: p.Status}
	if p.DisputeStatus != nil {
		s.Dispute = *p.DisputeStatus
	}
	return s
}

// lockBySession returns the purchase of a checkout session locked FOR
// UPDATE (soft-deleted ones included, so they are not recreated), or nil.
func lockBySession(ctx context.Context, tx bun.IDB, sessionID string) (*model.Purchase, error) {
	return lockWhere(ctx, tx, "stripe_checkout_session_id = ?", sessionID)
}

// lockByPayment returns the purchase of a payment intent, or else of a
// charge, locked FOR UPDATE, or nil.
func lockByPayment(ctx context.Context, tx bun.IDB, paymentIntentID, chargeID string) (*model.Purchase, error) {
	if paymentIntentID != "" {
		p, err := lockWhere(ctx, tx, "stripe_payment_intent_id = ?", paymentIntentID)
		if p != nil || err != nil {
			return p, err
		}
	}
	if chargeID != "" {
		return lockWhere(ctx, tx, "stripe_charge_id = ?", chargeID)
	}
	return nil, nil
}

func lockWhere(ctx context.Context, tx bun.IDB, where string, arg any) (*model.Purchase, error) {
	var p model.Purchase
	err := tx.NewSelect().Model(&p).WhereAllWithDeleted().Where(where, arg).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock purchase where %s: %w", where, err)
	}
	return &p, nil
}

// insertPurchase inserts p unless a purchase with its checkout session (or
// payment intent) exists already, and reports whether it did. A concurrent
// insert of the same session makes this one wait for it, then do nothing.
// Every unique key is an arbiter (no conflict target): with only the session
// key as arbiter, the race would surface as a unique violation on the
// payment intent key instead.
func insertPurchase(ctx context.Context, tx bun.IDB, p *model.Purchase) (bool, error) {
	res, err := tx.NewInsert().Model(p).On("CONFLICT DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("insert purchase of session %s: %w", p.StripeCheckoutSessionID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert purchase of session %s: %w", p.StripeCheckoutSessionID, err)
	}
	return n == 1, nil
}

// updatePurchase writes every column of p.
func updatePurchase(ctx context.Context, tx bun.IDB, p *model.Purchase) error {
	if _, err := tx.NewUpdate().Model(p).WherePK().WhereAllWithDeleted().Exec(ctx); err != nil {
		return fmt.Errorf("update purchase %s: %w", p.ID, err)
	}
	return nil
}

// Access changes syncAccess reports.
const (
	accessGranted   = "granted"
	accessRevoked   = "revoked"
	accessUnchanged = ""
)

// syncAccess makes the content_access row of p's (customer, content) agree
// with HasAccess, after p changed in this transaction. It serializes on a
// transaction-level advisory lock per (customer, content), so two purchases
// of the same pair changing at once cannot both decide on stale facts.
//
// A purchase takes over the row when it is missing, a purchase row, or a
// non-purchase grant that is revoked or expired. An active subscription,
// complimentary or preview grant is left alone (it gives access already) and
// never revoked by a purchase event; CheckAccess evaluates the full rule.
func syncAccess(ctx context.Context, tx bun.IDB, p *model.Purchase, pol AccessPolicy, now time.Time, reason string) (string, error) {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
		accessLockKey(p.CustomerID, p.ContentID)); err != nil {
		return "", fmt.Errorf("lock access of %q to %s: %w", p.CustomerID, p.ContentID, err)
	}
	best, row, exists, err := accessFacts(ctx, tx, p.CustomerID, p.ContentID, pol)
	if err != nil {
		return "", err
	}
	now = now.UTC()
	switch {
	case best != nil && !exists:
		row = model.ContentAccess{
			UserID: p.CustomerID, ContentID: p.ContentID, OrganizationID: p.OrganizationID,
			AccessType: model.AccessPurchased, PurchaseID: best, GrantedAt: now, CreatedAt: now, UpdatedAt: now,
		}
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return "", fmt.Errorf("grant access of %q to %s: %w", p.CustomerID, p.ContentID, err)
		}
		return accessGranted, nil
	case best != nil:
		if row.AccessType != model.AccessPurchased && row.RevokedAt == nil && (row.ExpiresAt == nil || now.Before(*row.ExpiresAt)) {
			return accessUnchanged, nil // an active grant of another kind stays
		}
		if row.AccessType == model.AccessPurchased && row.RevokedAt == nil && *row.PurchaseID == *best {
			return accessUnchanged, nil
		}
		wasActive := row.AccessType == model.AccessPurchased && row.RevokedAt == nil
		q := tx.NewUpdate().Model((*model.ContentAccess)(nil)).Where("id = ?", row.ID).
			Set("access_type = ?", model.AccessPurchased).Set("purchase_id = ?", *best).
			Set("revoked_at = NULL").Set("revoke_reason = NULL").Set("expires_at = NULL").
			Set("updated_at = ?", now)
		if !wasActive {
			q = q.Set("granted_at = ?", now)
		}
		if _, err := q.Exec(ctx); err != nil {
			return "", fmt.Errorf("grant access of %q to %s: %w", p.CustomerID, p.ContentID, err)
		}
		if wasActive {
			return accessUnchanged, nil // still granted, now through another purchase
		}
		return accessGranted, nil
	case exists && row.AccessType == model.AccessPurchased && row.RevokedAt == nil:
		_, err := tx.NewUpdate().Model((*model.ContentAccess)(nil)).Where("id = ?", row.ID).
			Set("revoked_at = ?", now).Set("revoke_reason = ?", reason).Set("updated_at = ?", now).Exec(ctx)
		if err != nil {
			return "", fmt.Errorf("revoke access of %q to %s: %w", p.CustomerID, p.ContentID, err)
		}
		return accessRevoked, nil
	}
	return accessUnchanged, nil
}

// accessLockKey is the advisory lock key of a (customer, content) pair's
// access; both the per-event and the set-based path lock it.
func accessLockKey(customerID string, contentID uuid.UUID) string {
	return "content_access:" + customerID + ":" + contentID.String()
}

// grantingPurchase returns the newest purchase of (customer, content) that
// grants access under pol, or nil, and the states of all of them.
func grantingPurchase(ctx context.Context, idb bun.IDB, customerID string, contentID uuid.UUID, pol AccessPolicy) (*uuid.UUID, []State, error) {
	var ps []model.Purchase
	err := idb.NewSelect().Model(&ps).Column("id", "status", "dispute_status").
		Where("customer_id = ?", customerID).Where("content_id = ?", contentID).
		OrderExpr(newestFirst).Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load purchases of %q for %s: %w", customerID, contentID, err)
	}
	best, states := granting(ps, pol)
	return best, states, nil
}

// newestFirst orders purchases of one (customer, content) so that the first
// one granting access is the one the access row points at.
const newestFirst = "purchased_at DESC NULLS LAST, created_at DESC"

// granting returns the first of ps (newest first) that grants access under
// pol, or nil, and the states of all of them.
func granting(ps []model.Purchase, pol AccessPolicy) (*uuid.UUID, []State) {
	var best *uuid.UUID
	states := make([]State, len(ps))
	for i := range ps {
		states[i] = stateOf(&ps[i])
		if best == nil && pol.Grants(states[i]) {
			best = &ps[i].ID
		}
	}
	return best, states
}

// accessFactsQuery reads, in one statement, what syncAccess decides on: the
// live purchases of (customer, content) newest first, as JSON, and their
// content_access row locked FOR UPDATE (NULLs when there is none). One
// statement instead of two saves a round trip on every purchase change; the
// purchases are read in the same snapshot as before (after the advisory
// lock). Arguments: user, content, customer, content.
var accessFactsQuery = `WITH a AS (
	SELECT id, access_type, purchase_id, expires_at, revoked_at FROM content_access
	WHERE user_id = ? AND content_id = ? FOR UPDATE)
SELECT
	` + pairPurchasesQuery("?", "?") + ` AS purchases,
	a.id, a.access_type, a.purchase_id, a.expires_at, a.revoked_at
FROM (SELECT 1) AS one LEFT JOIN a ON true`

// pairPurchasesQuery is the sub-select of accessFactsQuery and
// accessFactsManyQuery: the live purchases of (customer, content) as a JSON
// array, newest first. The scan's only conditions are the pair, so it reads
// purchases_customer_content_idx; deleted rows are left out by the
// aggregate's FILTER. With deleted_at IS NULL among the scan's conditions,
// a planner without statistics (autovacuum off: the soak's server) chose a
// BitmapAnd with purchases_content_idx instead, which reads every purchase
// of the content: 735 685 index entries per pair, 1.6 s per batch of 20,
// once one item had sold that often (bench soak).
func pairPurchasesQuery(customer, content string) string {
	return `(SELECT coalesce(json_agg(json_build_object('id', p.id, 'status', p.status, 'dispute_status', p.dispute_status)
		ORDER BY ` + newestFirstP + `) FILTER (WHERE p.deleted_at IS NULL), '[]')
	 FROM purchases AS p WHERE p.customer_id = ` + customer + ` AND p.content_id = ` + content + `)`
}

// newestFirstP is newestFirst for the alias p.
const newestFirstP = "p.purchased_at DESC NULLS LAST, p.created_at DESC"

// accessFactsRow is the one row of accessFactsQuery.
type accessFactsRow struct {
	Purchases  []byte     `bun:"purchases"`
	ID         *uuid.UUID `bun:"id"`
	AccessType *string    `bun:"access_type"`
	PurchaseID *uuid.UUID `bun:"purchase_id"`
	ExpiresAt  *time.Time `bun:"expires_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// accessFacts returns the purchase that grants (customer, content) access
// under pol (or nil) and their content_access row locked FOR UPDATE, with
// whether it exists. The caller holds the pair's advisory lock.
func accessFacts(ctx context.Context, tx bun.IDB, customerID string, contentID uuid.UUID, pol AccessPolicy) (*uuid.UUID, model.ContentAccess, bool, error) {
	var r accessFactsRow
	if err := tx.NewRaw(accessFactsQuery, customerID, contentID, customerID, contentID).Scan(ctx, &r); err != nil {
		return nil, model.ContentAccess{}, false, fmt.Errorf("load purchases and access of %q for %s: %w", customerID, contentID, err)
	}
	return r.facts(customerID, contentID, pol)
}

// facts decodes r: the granting purchase under pol (or nil), the access row
// and whether it exists.
func (r accessFactsRow) facts(customerID string, contentID uuid.UUID, pol AccessPolicy) (*uuid.UUID, model.ContentAccess, bool, error) {
	var js []struct {
		ID            uuid.UUID `json:"id"`
		Status        string    `json:"status"`
		DisputeStatus *string   `json:"dispute_status"`
	}
	if err := json.Unmarshal(r.Purchases, &js); err != nil {
		return nil, model.ContentAccess{}, false, fmt.Errorf("decode purchases of %q for %s: %w", customerID, contentID, err)
	}
	ps := make([]model.Purchase, len(js))
	for i, j := range js {
		ps[i] = model.Purchase{ID: j.ID, Status: j.Status, DisputeStatus: j.DisputeStatus}
	}
	best, _ := granting(ps, pol)
	if r.ID == nil {
		return best, model.ContentAccess{}, false, nil
	}
	row := model.ContentAccess{ID: *r.ID, UserID: customerID, ContentID: contentID,
		PurchaseID: r.PurchaseID, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt}
	if r.AccessType != nil {
		row.AccessType = *r.AccessType
	}
	return best, row, true, nil
}

// CheckAccess evaluates the access rule (HasAccess) for userID and contentID
// from the database: their purchases and their content_access row.
func CheckAccess(ctx context.Context, idb bun.IDB, userID string, contentID uuid.UUID, now time.Time, pol AccessPolicy) (bool, error) {
	_, states, err := grantingPurchase(ctx, idb, userID, contentID, pol)
	if err != nil {
		return false, err
	}
	var row model.ContentAccess
	err = idb.NewSelect().Model(&row).Where("user_id = ?", userID).Where("content_id = ?", contentID).Scan(ctx)
	var g *Grant
	switch {
	case err == nil:
		g = &Grant{AccessType: row.AccessType, ExpiresAt: row.ExpiresAt, RevokedAt: row.RevokedAt}
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("load access of %q to %s: %w", userID, contentID, err)
	}
	return HasAccess(states, g, now, pol), nil
}
