package purchase

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/model"
)

// accessPair is one (customer, content) of a set-based batch.
type accessPair struct {
	key      string
	customer string
	content  uuid.UUID
	org      uuid.UUID
	first    *fastCheckout // its first event in batch order: the access effect is counted there
}

// accessFactsManyQuery is accessFactsQuery for many pairs: the pairs come
// unnested with their ordinal; the access rows are locked in that order.
// Arguments: users, contents (text arrays of equal length).
var accessFactsManyQuery = `WITH k AS (
	SELECT * FROM unnest(?::text[], ?::uuid[]) WITH ORDINALITY AS k(user_id, content_id, ord)),
a AS (
	SELECT ca.id, ca.user_id, ca.content_id, ca.access_type, ca.purchase_id, ca.expires_at, ca.revoked_at
	FROM content_access AS ca JOIN k ON ca.user_id = k.user_id AND ca.content_id = k.content_id
	ORDER BY k.ord FOR UPDATE OF ca)
SELECT k.ord,
	` + pairPurchasesQuery("k.user_id", "k.content_id") + ` AS purchases,
	a.id, a.access_type, a.purchase_id, a.expires_at, a.revoked_at
FROM k LEFT JOIN a ON a.user_id = k.user_id AND a.content_id = k.content_id
ORDER BY k.ord`

// grantFast makes the content_access rows of the pairs of applied agree
// with the access rule, as syncAccess does for one purchase: the advisory
// locks of all pairs in one statement (sorted), then their facts in one
// statement, the decision in Go (AccessPolicy.Grants through granting), and
// one upsert of the rows to write. Each pair is written once even when
// several purchases of the batch share it: the facts already include all of
// them.
func (f *family) grantFast(ctx context.Context, tx bun.Tx, applied []*fastCheckout, now time.Time) error {
	if len(applied) == 0 {
		return nil
	}
	byKey := make(map[string]*accessPair, len(applied))
	var pairs []*accessPair
	for _, fc := range applied {
		k := accessLockKey(fc.p.CustomerID, fc.p.ContentID)
		if byKey[k] == nil {
			byKey[k] = &accessPair{key: k, customer: fc.p.CustomerID, content: fc.p.ContentID, org: fc.p.OrganizationID, first: fc}
			pairs = append(pairs, byKey[k])
		}
	}
	slices.SortFunc(pairs, func(a, b *accessPair) int { return strings.Compare(a.key, b.key) })
	lockKeys, users, contents := make([]string, len(pairs)), make([]string, len(pairs)), make([]string, len(pairs))
	for j, pr := range pairs {
		lockKeys[j], users[j], contents[j] = pr.key, pr.customer, pr.content.String()
	}
	// The ORDER BY makes the locks be taken in key order (Postgres
	// evaluates a volatile output column after the sort).
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(u.k, 0))
FROM unnest(?::text[]) WITH ORDINALITY AS u(k, ord) ORDER BY u.ord`, pgdialect.Array(lockKeys)); err != nil {
		return fmt.Errorf("lock access of %d (customer, content) pairs: %w", len(pairs), err)
	}
	var facts []struct {
		accessFactsRow
		Ord int `bun:"ord"`
	}
	if err := tx.NewRaw(accessFactsManyQuery, pgdialect.Array(users), pgdialect.Array(contents)).Scan(ctx, &facts); err != nil {
		return fmt.Errorf("load purchases and access of %d pairs: %w", len(pairs), err)
	}
	if len(facts) != len(pairs) {
		return fmt.Errorf("load purchases and access: %d rows for %d pairs", len(facts), len(pairs))
	}
	var writes []model.ContentAccess
	granted := make(map[string]bool)
	for _, fa := range facts {
		pr := pairs[fa.Ord-1]
		best, row, exists, err := fa.facts(pr.customer, pr.content, f.cfg.Access)
		if err != nil {
			return err
		}
		if best == nil {
			// A new completed purchase grants access under every policy;
			// if that ever changes, the whole batch goes the per-event way.
			return fmt.Errorf("access of %q to %s: the new completed purchase grants no access", pr.customer, pr.content)
		}
		switch {
		case !exists:
			granted[pr.key] = true
		case row.AccessType != model.AccessPurchased && row.RevokedAt == nil && (row.ExpiresAt == nil || now.Before(*row.ExpiresAt)):
			continue // an active grant of another kind stays
		case row.AccessType == model.AccessPurchased && row.RevokedAt == nil && row.PurchaseID != nil && *row.PurchaseID == *best:
			continue
		case row.AccessType != model.AccessPurchased || row.RevokedAt != nil:
			granted[pr.key] = true // was not active: granted again
		}
		writes = append(writes, model.ContentAccess{
			UserID: pr.customer, ContentID: pr.content, OrganizationID: pr.org,
			AccessType: model.AccessPurchased, PurchaseID: best, GrantedAt: now, CreatedAt: now, UpdatedAt: now,
		})
	}
	if len(writes) == 0 {
		return nil
	}
	// The WHERE keeps an active grant of another kind even if one appeared
	// after the facts were read (its writers do not take the advisory
	// lock); granted_at moves only when access was not active before.
	var written []struct {
		UserID    string    `bun:"user_id"`
		ContentID uuid.UUID `bun:"content_id"`
	}
	_, err := tx.NewInsert().Model(&writes).On("CONFLICT (user_id, content_id) DO UPDATE").
		Set("access_type = EXCLUDED.access_type").Set("purchase_id = EXCLUDED.purchase_id").
		Set("revoked_at = NULL").Set("revoke_reason = NULL").Set("expires_at = NULL").
		Set("updated_at = EXCLUDED.updated_at").
		Set("granted_at = CASE WHEN content_access.access_type = ? AND content_access.revoked_at IS NULL "+
			"THEN content_access.granted_at ELSE EXCLUDED.granted_at END", model.AccessPurchased).
		Where("content_access.access_type = ? OR content_access.revoked_at IS NOT NULL "+
			"OR content_access.expires_at <= EXCLUDED.updated_at", model.AccessPurchased).
		Returning("user_id, content_id").Exec(ctx, &written)
	if err != nil {
		return fmt.Errorf("grant access of %d pairs: %w", len(writes), err)
	}
	for _, w := range written {
		k := accessLockKey(w.UserID, w.ContentID)
		if granted[k] {
			f.effects(byKey[k].first.rec).access(accessGranted)
		}
	}
	return nil
}
