package purchase

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
		"content_access:"+p.CustomerID+":"+p.ContentID.String()); err != nil {
		return "", fmt.Errorf("lock access of %q to %s: %w", p.CustomerID, p.ContentID, err)
	}
	best, _, err := grantingPurchase(ctx, tx, p.CustomerID, p.ContentID, pol)
	if err != nil {
		return "", err
	}
	var row model.ContentAccess
	err = tx.NewSelect().Model(&row).Where("user_id = ?", p.CustomerID).Where("content_id = ?", p.ContentID).For("UPDATE").Scan(ctx)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("load access of %q to %s: %w", p.CustomerID, p.ContentID, err)
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

// grantingPurchase returns the newest purchase of (customer, content) that
// grants access under pol, or nil, and the states of all of them.
func grantingPurchase(ctx context.Context, idb bun.IDB, customerID string, contentID uuid.UUID, pol AccessPolicy) (*uuid.UUID, []State, error) {
	var ps []model.Purchase
	err := idb.NewSelect().Model(&ps).Column("id", "status", "dispute_status").
		Where("customer_id = ?", customerID).Where("content_id = ?", contentID).
		OrderExpr("purchased_at DESC NULLS LAST, created_at DESC").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load purchases of %q for %s: %w", customerID, contentID, err)
	}
	var best *uuid.UUID
	states := make([]State, len(ps))
	for i := range ps {
		states[i] = stateOf(&ps[i])
		if best == nil && pol.Grants(states[i]) {
			best = &ps[i].ID
		}
	}
	return best, states, nil
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
