package purchase

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// batchPath is how HandleBatch applies a batch.
type batchPath int

const (
	// pathSetBased (the default) applies the batch's new paid checkouts
	// with a fixed number of set-based statements and every other event
	// one by one in its own savepoint, all in one transaction.
	pathSetBased batchPath = iota
	// pathPerEvent applies every event in its own savepoint (the path
	// before the set-based one; tests and benchmarks compare the two).
	pathPerEvent
	// pathSetBasedAlways is pathSetBased even for a batch of one event,
	// so the tests can run single events through it.
	pathSetBasedAlways
)

// The set-based path: a batch of N new paid checkouts costs a fixed number
// of statements instead of about 10 per event:
//
//	BEGIN
//	content + terms of every distinct (content, event time)    1  (split.ContentTermsAtMany)
//	INSERT purchases … ON CONFLICT DO NOTHING RETURNING        1
//	SELECT purchases FOR UPDATE of the sessions not new        0 or 1
//	advisory locks of every (customer, content), sorted        1
//	purchases + content_access FOR UPDATE of every pair        1
//	INSERT content_access … ON CONFLICT DO UPDATE … WHERE      0 or 1
//	INSERT outbox                                              1
//	UPDATE checkout_sessions (the API's sessions complete)     1
//	INSERT stripe_events … ON CONFLICT DO NOTHING RETURNING    1
//	COMMIT
//
// Lock order. Every transaction that takes several of these locks takes
// them in one global order: checkout session keys (the purchase insert and
// lookup, sorted by session id) → access advisory keys (sorted) → access
// rows (same order) → checkout_sessions rows (session order) → stripe_events
// keys (sorted by event id). A single
// event of the per-event path takes one of each in that order too, so two
// set-based batches, or a batch and a single event, on different instances
// wait for each other but cannot deadlock. (The events of a batch that do
// not take the fast path run after its set-based part, one by one; should
// one of them deadlock with another transaction, Postgres fails that
// event's statement, its savepoint is rolled back and it is retried.)
//
// Lock table: a batch holds at most one advisory lock per event (64 at the
// largest batch size, PROCESSOR_BATCH_SIZE ≤ 64) plus a few relation locks;
// row locks (FOR UPDATE, inserted keys) do not use the lock table. The
// shared lock table has max_locks_per_transaction × max_connections slots
// (64 × 100 by default), so even every connection at the largest batch
// (64 + ~10 locks each) fits.

// fastCheckout is a checkout.session.completed of a paid session, decoded
// and validated in Go, which the set-based path can apply.
type fastCheckout struct {
	i         int // index in the batch
	ev        event
	s         session
	meta      purchaseMeta
	p         *model.Purchase // the new purchase, once its terms are known
	creatorID string
	rec       *record
}

// eventCopy is a later delivery, in the same batch, of an event id.
type eventCopy struct{ copy, first int }

// dedupByID returns todo without the later copies of an event id, and the
// copies. A copy's result is its first's: the same error, or Duplicate.
func dedupByID(evs []event, todo []int) ([]int, []eventCopy) {
	first := make(map[string]int, len(todo))
	out := make([]int, 0, len(todo))
	var copies []eventCopy
	for _, i := range todo {
		if f, ok := first[evs[i].ID]; ok {
			copies = append(copies, eventCopy{copy: i, first: f})
			continue
		}
		first[evs[i].ID] = i
		out = append(out, i)
	}
	return out, copies
}

// settleCopies gives every copy its first's result: handled one by one, the
// copy would find the id claimed (Duplicate) or fail as the first did.
func settleCopies(res []handling.Result, copies []eventCopy, logs []*slog.Logger) {
	for _, c := range copies {
		if err := res[c.first].Err; err != nil {
			res[c.copy].Err = err
			continue
		}
		res[c.copy].Outcome = handling.Duplicate
		logs[c.copy].Info("stripe event handled", "outcome", handling.Duplicate, "note", "same event id twice in one batch")
	}
}

// fastCheckoutOf reports whether ev can take the set-based path: a
// checkout.session.completed whose session is paid (or needs no payment)
// with valid metadata. Anything else, including every input error, goes the
// per-event path, which gives it its exact result.
func fastCheckoutOf(i int, ev event) (*fastCheckout, bool) {
	if ev.Type != TypeCheckoutCompleted {
		return nil, false
	}
	s, err := decodeSession(ev)
	if err != nil {
		return nil, false
	}
	switch s.PaymentStatus {
	case string(stripe.CheckoutSessionPaymentStatusPaid), string(stripe.CheckoutSessionPaymentStatusNoPaymentRequired):
	default:
		return nil, false
	}
	meta, err := parseMetadata(s)
	if err != nil {
		return nil, false
	}
	return &fastCheckout{i: i, ev: ev, s: s, meta: meta}, true
}

// applySetBased applies evs[i], i in todo, in one transaction: the new paid
// checkouts set-based, the rest one by one in savepoints after them. An
// event whose stripe_events claim was lost to another instance rolls the
// transaction back; the batch then runs again without it, and it is a
// duplicate. The returned values mean what applyBatch's mean.
func (h *Handler) applySetBased(ctx context.Context, evs []event, todo []int) ([]*record, []error, error) {
	var fast []*fastCheckout
	var rest []int
	// touched holds the session, payment intent and charge ids of the
	// events that go the per-event path so far. The set-based part runs
	// before them, so a checkout that comes after one of them in the batch
	// (the same session twice, a refund racing its checkout) goes the
	// per-event path too: each event then sees what it would see one by one.
	touched := make(map[string]bool)
	for _, i := range todo {
		fc, ok := fastCheckoutOf(i, evs[i])
		if ok && !touched[fc.s.ID] && (fc.s.PaymentIntentID == "" || !touched[fc.s.PaymentIntentID]) {
			fast = append(fast, fc)
			touched[fc.s.ID] = true // a later event of the session runs after it, as one by one
			continue
		}
		rest = append(rest, i)
		for _, k := range objectKeys(evs[i]) {
			touched[k] = true
		}
	}
	if len(fast) == 0 {
		return h.applyBatch(ctx, evs, todo)
	}
	var lostAll []int
	for {
		var recs []*record
		var errs []error
		var lost []int
		var err error
		if len(fast) > 0 {
			recs, errs, lost, err = h.applyFastBatch(ctx, evs, fast, rest)
		} else if len(rest) > 0 {
			recs, errs, err = h.applyBatch(ctx, evs, rest)
		} else {
			recs, errs = make([]*record, len(evs)), make([]error, len(evs))
		}
		if err != nil {
			return nil, nil, err
		}
		if len(lost) == 0 {
			for _, i := range lostAll {
				recs[i] = &record{seen: true}
			}
			return recs, errs, nil
		}
		h.log.Info("stripe events of the batch claimed by another transaction; applying the batch without them", "events", len(lost))
		lostAll = append(lostAll, lost...)
		fast = slices.DeleteFunc(fast, func(fc *fastCheckout) bool { return slices.Contains(lost, fc.i) })
	}
}

// applyFastBatch runs one attempt of applySetBased: the set-based part, then
// the other events one by one, then the commit. lost lists events whose
// claim another transaction holds; the transaction was rolled back then.
func (h *Handler) applyFastBatch(ctx context.Context, evs []event, fast []*fastCheckout, rest []int) (recs []*record, errs []error, lost []int, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("begin batch: %w", err)
	}
	defer func() {
		if err != nil || len(lost) > 0 {
			_ = tx.Rollback() // the connection may be gone; the transaction ends with it
		}
	}()
	recs, errs = make([]*record, len(evs)), make([]error, len(evs))
	moved, lost, err := h.applyFast(ctx, tx, fast, recs)
	if err != nil || len(lost) > 0 {
		return nil, nil, lost, err
	}
	each := append(slices.Clone(rest), moved...)
	slices.Sort(each) // batch order
	if err := h.applyEach(ctx, tx, evs, each, recs, errs); err != nil {
		return nil, nil, nil, err
	}
	if err := h.commitBatch(ctx, tx, len(fast)+len(rest)); err != nil {
		return nil, nil, nil, err
	}
	return recs, errs, nil, nil
}

// applyFast applies the new paid checkouts of fast with set-based
// statements and sets recs[fc.i] of each one it applied (or found to be a
// duplicate). moved lists the events it left to the per-event path: content
// missing, deleted or of another organization, a split that fails, a
// session whose purchase exists and is not done with payment (pending,
// deleted), or whose payment intent belongs to another session. lost lists
// the events whose stripe_events claim another transaction committed.
func (h *Handler) applyFast(ctx context.Context, tx bun.Tx, fast []*fastCheckout, recs []*record) (moved, lost []int, err error) {
	start := h.cfg.Now() // processed_at: when handling began
	now := start.UTC()

	// Content and terms of every distinct (content, event time).
	keyOf := make(map[split.ContentAt]int, len(fast))
	var keys []split.ContentAt
	for _, fc := range fast {
		k := split.ContentAt{ContentID: fc.meta.ContentID, At: fc.ev.at}
		if _, ok := keyOf[k]; !ok {
			keyOf[k] = len(keys)
			keys = append(keys, k)
		}
	}
	cts, err := split.ContentTermsAtMany(ctx, tx, keys)
	if err != nil {
		return nil, nil, err
	}
	live := make([]*fastCheckout, 0, len(fast))
	for _, fc := range fast {
		ct := cts[keyOf[split.ContentAt{ContentID: fc.meta.ContentID, At: fc.ev.at}]]
		if !ct.Found || ct.Content.DeletedAt != nil || ct.Content.OrganizationID != fc.meta.OrganizationID {
			moved = append(moved, fc.i) // the per-event path names the fault
			continue
		}
		p, err := h.newPurchase(fc.ev, fc.s, fc.meta, ct.Terms, model.PurchaseCompleted)
		if err != nil {
			moved = append(moved, fc.i)
			continue
		}
		fc.p, fc.creatorID = p, ct.Content.CreatorID
		live = append(live, fc)
	}
	if len(live) == 0 {
		return moved, nil, nil
	}

	// Purchases, in session order. Both unique keys are arbiters, as in
	// insertPurchase; a session whose row is not returned existed already
	// (or waited for a concurrent insert that committed).
	slices.SortFunc(live, func(a, b *fastCheckout) int { return strings.Compare(a.s.ID, b.s.ID) })
	rows := make([]model.Purchase, len(live))
	for j, fc := range live {
		rows[j] = *fc.p
	}
	var inserted []string
	if _, err := tx.NewInsert().Model(&rows).On("CONFLICT DO NOTHING").
		Returning("stripe_checkout_session_id").Exec(ctx, &inserted); err != nil {
		return nil, nil, fmt.Errorf("insert %d purchases: %w", len(rows), err)
	}
	isNew := make(map[string]bool, len(inserted))
	for _, s := range inserted {
		isNew[s] = true
	}
	var old []string
	for _, fc := range live {
		if !isNew[fc.s.ID] {
			old = append(old, fc.s.ID)
		}
	}
	existing := make(map[string]*model.Purchase, len(old))
	if len(old) > 0 {
		var ps []model.Purchase
		err := tx.NewSelect().Model(&ps).WhereAllWithDeleted().Where("stripe_checkout_session_id IN (?)", bun.In(old)).
			OrderExpr("stripe_checkout_session_id").For("UPDATE").Scan(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("lock purchases of %d checkout sessions: %w", len(old), err)
		}
		for j := range ps {
			existing[ps[j].StripeCheckoutSessionID] = &ps[j]
		}
	}
	var applied, claims []*fastCheckout
	for _, fc := range live {
		if isNew[fc.s.ID] {
			fc.rec = &record{outcome: model.EventApplied}
			applied = append(applied, fc)
			claims = append(claims, fc)
			continue
		}
		p := existing[fc.s.ID]
		if p == nil || p.DeletedAt != nil {
			moved = append(moved, fc.i) // payment_intent_conflict, or a deleted purchase
			continue
		}
		if _, changed := Transition(stateOf(p), TriggerPaid); changed {
			moved = append(moved, fc.i) // a pending purchase completes the per-event way
			continue
		}
		fc.rec = &record{}
		fc.rec.duplicate(p.ID, fmt.Sprintf("purchase %s is %s; %s changes nothing", p.ID, p.Status, TriggerPaid))
		claims = append(claims, fc)
	}
	slices.SortFunc(applied, func(a, b *fastCheckout) int { return a.i - b.i }) // effects in batch order

	if err := h.grantFast(ctx, tx, applied, now); err != nil {
		return nil, nil, err
	}

	// The PURCHASES events, in batch order.
	if len(applied) > 0 {
		obs := make([]model.Outbox, 0, len(applied))
		for _, fc := range applied {
			p := fc.p
			to := stateOf(p)
			kind := kindOf(State{}, to)
			data := dataOf(p, fc.creatorID, "", h.cfg.Access.Grants(to), fc.ev.ID)
			row, err := outbox.NewRow(ctx, streams.PurchaseSubject(kind), streams.PurchaseEventType(kind), p.ID, data, now)
			if err != nil {
				return nil, nil, err
			}
			obs = append(obs, row)
			fc.rec.effects.status(p.Currency, to.Status)
			fc.rec.effects.revenue(p.Currency, split.Split{Amount: p.AmountPaidCents, Platform: p.PlatformFeeCents,
				Organization: p.OrganizationFeeCents, Creator: p.CreatorPayoutCents})
			fc.rec.applied(p.ID)
		}
		if _, err := tx.NewInsert().Model(&obs).Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("outbox: insert %d events: %w", len(obs), err)
		}
	}

	if len(claims) == 0 {
		return moved, nil, nil
	}

	// The checkout_sessions rows the purchase API created: every settled
	// session (applied or a duplicate, as the per-event path marks each
	// paid completion) completes in one statement, in session order. The
	// sessions of fast are distinct.
	ids, ats := make([]string, len(claims)), make([]time.Time, len(claims))
	for j, fc := range claims {
		ids[j], ats[j] = fc.s.ID, fc.ev.at
	}
	if err := markSessionsComplete(ctx, tx, ids, ats); err != nil {
		return nil, nil, err
	}

	// The claims, last and in event id order.
	slices.SortFunc(claims, func(a, b *fastCheckout) int { return strings.Compare(a.ev.ID, b.ev.ID) })
	evRows := make([]model.StripeEvent, len(claims))
	for j, fc := range claims {
		evRows[j] = eventRow(fc.ev, fc.rec, start)
	}
	var claimed []string
	if _, err := tx.NewInsert().Model(&evRows).On("CONFLICT (event_id) DO NOTHING").
		Returning("event_id").Exec(ctx, &claimed); err != nil {
		return nil, nil, fmt.Errorf("record %d stripe events: %w", len(evRows), err)
	}
	if len(claimed) < len(claims) {
		got := make(map[string]bool, len(claimed))
		for _, id := range claimed {
			got[id] = true
		}
		for _, fc := range claims {
			if !got[fc.ev.ID] {
				lost = append(lost, fc.i)
			}
		}
		return nil, lost, nil
	}
	for _, fc := range claims {
		recs[fc.i] = fc.rec
	}
	return moved, nil, nil
}

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
const accessFactsManyQuery = `WITH k AS (
	SELECT * FROM unnest(?::text[], ?::uuid[]) WITH ORDINALITY AS k(user_id, content_id, ord)),
a AS (
	SELECT ca.id, ca.user_id, ca.content_id, ca.access_type, ca.purchase_id, ca.expires_at, ca.revoked_at
	FROM content_access AS ca JOIN k ON ca.user_id = k.user_id AND ca.content_id = k.content_id
	ORDER BY k.ord FOR UPDATE OF ca)
SELECT k.ord,
	(SELECT coalesce(json_agg(json_build_object('id', p.id, 'status', p.status, 'dispute_status', p.dispute_status)
		ORDER BY ` + newestFirstP + `), '[]')
	 FROM purchases AS p WHERE p.customer_id = k.user_id AND p.content_id = k.content_id AND p.deleted_at IS NULL) AS purchases,
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
func (h *Handler) grantFast(ctx context.Context, tx bun.Tx, applied []*fastCheckout, now time.Time) error {
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
	for _, f := range facts {
		pr := pairs[f.Ord-1]
		best, row, exists, err := f.facts(pr.customer, pr.content, h.cfg.Access)
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
			byKey[k].first.rec.effects.access(accessGranted)
		}
	}
	return nil
}

// objectKeys returns the ids by which ev's data.object can reach a purchase:
// its own id (a checkout session or payment intent), its payment_intent and
// its charge (an id or an expanded object). Input that does not parse has
// none; the per-event path rejects it without touching a purchase.
func objectKeys(ev event) []string {
	if ev.session != nil { // decoded with the envelope; a checkout session has no charge
		if pi := string(ev.session.PaymentIntent); pi != "" {
			return []string{ev.session.ID, pi}
		}
		return []string{ev.session.ID}
	}
	if ev.stripe.Data == nil || len(ev.stripe.Data.Raw) == 0 {
		return nil
	}
	var obj struct {
		ID            string          `json:"id"`
		PaymentIntent json.RawMessage `json:"payment_intent"`
		Charge        json.RawMessage `json:"charge"`
	}
	if err := json.Unmarshal(ev.stripe.Data.Raw, &obj); err != nil {
		return nil
	}
	keys := []string{obj.ID}
	for _, raw := range []json.RawMessage{obj.PaymentIntent, obj.Charge} {
		// A reference that does not parse is skipped, not the object.
		var id expandableID
		if len(raw) > 0 && id.UnmarshalJSON(raw) == nil && id != "" {
			keys = append(keys, string(id))
		}
	}
	return keys
}
