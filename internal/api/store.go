package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// AccessQuery is the grant check of content_access alone: one row through
// its unique (user_id, content_id) index, joined to the purchase that
// grants it. Active means neither revoked nor expired at $3; the processor
// keeps the row in line with the purchase lifecycle, so no purchase rule
// runs here. The purchase checkout asks it whether the customer already
// owns the item (a membership does not make an item owned: the customer may
// still buy it to keep it). The access route asks subscription.AccessQuery,
// which adds the subscriptions that grant the item (docs/api.md, "Access
// check").
const AccessQuery = `SELECT a.access_type, a.purchase_id, p.status, a.granted_at, a.expires_at, a.revoked_at,
	(a.revoked_at IS NULL AND (a.expires_at IS NULL OR a.expires_at > $3)) AS active
FROM content_access a LEFT JOIN purchases p ON p.id = a.purchase_id
WHERE a.user_id = $1 AND a.content_id = $2`

// accessRow is AccessQuery's row.
type accessRow struct {
	AccessType     string
	PurchaseID     *uuid.UUID
	PurchaseStatus *string
	GrantedAt      time.Time
	ExpiresAt      *time.Time
	RevokedAt      *time.Time
	Active         bool
}

// rowQuerier is *sql.DB or *sql.Tx: the access check goes to database/sql
// directly, so its $n placeholders reach Postgres as they are (Bun would
// rewrite ? placeholders) and the hot path skips Bun's query formatting.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadAccess runs AccessQuery; found is false when the customer never had a
// grant of the content.
func loadAccess(ctx context.Context, idb rowQuerier, customer string, content uuid.UUID, now time.Time) (r accessRow, found bool, err error) {
	var pid uuid.NullUUID
	// pgtype.UUID: pgx encodes it directly, skipping the driver.Valuer
	// string round trip of uuid.UUID (6 % of the hot path's CPU).
	err = idb.QueryRowContext(ctx, AccessQuery, customer, pgtype.UUID{Bytes: content, Valid: true}, now).
		Scan(&r.AccessType, &pid, &r.PurchaseStatus, &r.GrantedAt, &r.ExpiresAt, &r.RevokedAt, &r.Active)
	if errors.Is(err, sql.ErrNoRows) {
		return accessRow{}, false, nil
	}
	if err != nil {
		return accessRow{}, false, fmt.Errorf("check access of %q to %s: %w", customer, content, err)
	}
	if pid.Valid {
		r.PurchaseID = &pid.UUID
	}
	return r, true, nil
}

// accessStmt is the access check's query prepared once per pooled
// connection (database/sql re-prepares it on each connection it runs on):
// the hot path then sends Bind/Execute of a named statement and Postgres
// reuses its plan, as a direct pgx client with its statement cache does. It
// is prepared on first use, so New needs no database, and again after a
// failure. Another query than its own runs unprepared.
type accessStmt struct {
	db    *sql.DB
	query string
	mu    sync.Mutex
	stmt  *sql.Stmt
}

// QueryRowContext implements rowQuerier.
func (a *accessStmt) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st := a.prepared(ctx, query)
	if st == nil {
		return a.db.QueryRowContext(ctx, query, args...) // Scan reports the failure if the DB is down
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext implements subscription.Querier like QueryRowContext.
func (a *accessStmt) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st := a.prepared(ctx, query)
	if st == nil {
		return a.db.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// prepared returns the statement of query, preparing it on first use; nil
// for another query, or when preparing failed (the caller runs it
// unprepared, and a database that is down fails that run).
func (a *accessStmt) prepared(ctx context.Context, query string) *sql.Stmt {
	if query != a.query {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stmt == nil {
		st, err := a.db.PrepareContext(ctx, a.query)
		if err != nil {
			return nil
		}
		a.stmt = st
	}
	return a.stmt
}

// Close releases the prepared statement.
func (a *accessStmt) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stmt == nil {
		return nil
	}
	err := a.stmt.Close()
	a.stmt = nil
	return err
}

// loadContent returns the content id, or nil when it is unknown or deleted.
func loadContent(ctx context.Context, idb bun.IDB, id uuid.UUID) (*model.Content, error) {
	var c model.Content // soft_delete hides deleted rows
	return selectOne(ctx, idb.NewSelect().Model(&c).Where("id = ?", id), &c, "load content "+id.String())
}

// lockCustomerContent serialises checkout creation for one (customer,
// content) in the caller's transaction, so two concurrent requests cannot
// both create a session.
func lockCustomerContent(ctx context.Context, tx bun.Tx, customer string, content uuid.UUID) error {
	return lockName(ctx, tx, "checkout:"+customer+":"+content.String())
}

// lockName takes the transaction-scoped advisory lock of name (hashed to
// Postgres' 64-bit lock key; a collision only serialises two unrelated
// requests).
func lockName(ctx context.Context, tx bun.Tx, name string) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", name); err != nil {
		return fmt.Errorf("lock %q: %w", name, err)
	}
	return nil
}

// openSession returns the newest open session of (customer, content) that
// expires after notBefore, or nil.
func openSession(ctx context.Context, idb bun.IDB, customer string, content uuid.UUID, notBefore time.Time) (*model.CheckoutSession, error) {
	var s model.CheckoutSession
	return selectOne(ctx, idb.NewSelect().Model(&s).
		Where("customer_id = ?", customer).Where("content_id = ?", content).
		Where("status = ?", model.CheckoutOpen).Where("expires_at > ?", notBefore).
		Order("expires_at DESC").Limit(1), &s, fmt.Sprintf("find open checkout session of %q for %s", customer, content))
}

// sessionByKey returns the session created under an Idempotency-Key, or nil.
func sessionByKey(ctx context.Context, idb bun.IDB, key string) (*model.CheckoutSession, error) {
	var s model.CheckoutSession
	return selectOne(ctx, idb.NewSelect().Model(&s).Where("idempotency_key = ?", key), &s, "find checkout session of idempotency key")
}

// insertSession records a session Stripe created. When the id is already
// recorded (Stripe replayed an idempotent create) it returns the stored row.
func insertSession(ctx context.Context, idb bun.IDB, s *model.CheckoutSession) (*model.CheckoutSession, error) {
	return insertOrLoad(ctx, idb, s, s.ID, "checkout session")
}

// purchaseByID returns one purchase, or nil.
func purchaseByID(ctx context.Context, idb bun.IDB, id uuid.UUID) (*model.Purchase, error) {
	var p model.Purchase
	return selectOne(ctx, idb.NewSelect().Model(&p).Where("id = ?", id), &p, "load purchase "+id.String())
}

// historyQuery selects one page of a customer's purchases.
type historyQuery struct {
	Customer      string
	Status        string     // "" = every status
	StartingAfter *uuid.UUID // cursor: the last purchase of the previous page
	Limit         int
}

// errCursorUnknown: starting_after is not a purchase of the customer.
var errCursorUnknown = errors.New("starting_after is not a purchase of this customer")

// listPurchases returns up to q.Limit purchases newest first (created_at,
// then id, both descending: a stable order for the cursor), and whether more
// follow. It reads through purchases_customer_created_idx.
func listPurchases(ctx context.Context, idb bun.IDB, q historyQuery) ([]model.Purchase, bool, error) {
	sel := idb.NewSelect().Model((*model.Purchase)(nil)).Where("customer_id = ?", q.Customer)
	if q.Status != "" {
		sel = sel.Where("status = ?", q.Status)
	}
	if q.StartingAfter != nil {
		ok, err := idb.NewSelect().Model((*model.Purchase)(nil)).
			Where("id = ?", *q.StartingAfter).Where("customer_id = ?", q.Customer).Exists(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("load cursor purchase %s: %w", *q.StartingAfter, err)
		}
		if !ok {
			return nil, false, errCursorUnknown
		}
		// The cursor's key is read in SQL so its timestamp keeps its full
		// precision.
		sel = sel.Where("(created_at, id) < (SELECT c.created_at, c.id FROM purchases c WHERE c.id = ?)", *q.StartingAfter)
	}
	var ps []model.Purchase
	if err := sel.OrderExpr("created_at DESC, id DESC").Limit(int64(q.Limit)+1).Scan(ctx, &ps); err != nil {
		return nil, false, fmt.Errorf("list purchases of %q: %w", q.Customer, err)
	}
	more := len(ps) > q.Limit
	if more {
		ps = ps[:q.Limit]
	}
	return ps, more, nil
}
