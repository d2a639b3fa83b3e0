package purchase

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// The set-based path: a batch of N new paid checkouts costs a fixed number
// of statements instead of about 13 per event:
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
//	INSERT stripe_events … ON CONFLICT DO NOTHING RETURNING    1  (eventtx, after every set path)
//	ledger: the sales, with the batch's other postings         2  (eventtx, ledger.PostMany, before the commit)
//	COMMIT
//
// Lock order. Every transaction that takes several of these locks takes
// them in one global order: checkout session keys (the purchase insert and
// lookup, sorted by session id) → access advisory keys (sorted) → access
// rows (same order) → checkout_sessions rows (session order) → stripe_events
// keys (sorted by event id) → ledger accounts (one statement, in the
// ledger's order). A single event of the per-event path takes one of each
// in that order too, so two set-based batches, or a batch and a single
// event, on different instances wait for each other but cannot deadlock. (The events of a batch that do
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

// setBased is the purchase family's eventtx.SetPath: the new paid
// checkouts of a batch, applied set-based.
type setBased struct{ f *family }

var _ eventtx.SetPath = setBased{}

// fastCheckout is a checkout.session.completed of a paid session, decoded
// and validated in Go, which the set-based path can apply.
type fastCheckout struct {
	j    int // index in the selection
	ev   *eventtx.Event
	s    session
	meta purchaseMeta
	p    *model.Purchase // the new purchase, once its terms are known
	rec  *eventtx.Record
}

// fastCheckoutOf reports whether ev can take the set-based path: a
// checkout.session.completed whose session is paid (or needs no payment)
// with valid metadata. Anything else, including every input error, goes the
// per-event path, which gives it its exact result.
func fastCheckoutOf(ev *eventtx.Event) (*fastCheckout, bool) {
	cs, ok := ev.Object.(*checkoutObject)
	if ev.Type != TypeCheckoutCompleted || !ok || cs.Mode == modeSubscription {
		return nil, false
	}
	s, err := sessionOf(*ev, cs)
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
	return &fastCheckout{ev: ev, s: s, meta: meta}, true
}

// Select takes the new paid checkouts of batch. The set-based part runs
// before the batch's other events, so a checkout that comes after another
// event of its session or payment intent in the batch (the same session
// twice, a refund racing its checkout) is left to the per-event path: each
// event then sees what it would see one by one.
func (setBased) Select(batch []*eventtx.Event) []*eventtx.Event {
	var sel []*eventtx.Event
	touched := make(map[string]bool) // ids of sessions, payment intents and charges the per-event path will touch
	for _, ev := range batch {
		fc, ok := fastCheckoutOf(ev)
		if ok && !touched[fc.s.ID] && (fc.s.PaymentIntentID == "" || !touched[fc.s.PaymentIntentID]) {
			sel = append(sel, ev)
			touched[fc.s.ID] = true // a later event of the session runs after it, as one by one
			continue
		}
		for _, k := range objectKeys(ev) {
			touched[k] = true
		}
	}
	return sel
}

// Apply applies the new paid checkouts of sel with set-based statements.
// An event gets no record, and goes the per-event path, when its content is
// missing, deleted or of another organization, its split fails, its
// session's purchase exists and is not done with payment (pending, deleted),
// or its payment intent belongs to another session.
func (sb setBased) Apply(ctx context.Context, tx bun.Tx, sel []*eventtx.Event) ([]*eventtx.Record, error) {
	f := sb.f
	now := f.cfg.Now().UTC()
	recs := make([]*eventtx.Record, len(sel))
	fast := make([]*fastCheckout, 0, len(sel))
	for j, ev := range sel {
		if fc, ok := fastCheckoutOf(ev); ok {
			fc.j = j
			fast = append(fast, fc)
		}
	}
	priced, err := f.priceFast(ctx, tx, fast)
	if err != nil || len(priced) == 0 {
		return recs, err
	}
	applied, settled, err := insertFast(ctx, tx, priced)
	if err != nil {
		return nil, err
	}
	if err := f.grantFast(ctx, tx, applied, now); err != nil {
		return nil, err
	}
	if err := postFast(applied); err != nil {
		return nil, err
	}
	if err := f.outboxFast(ctx, tx, applied, now); err != nil {
		return nil, err
	}
	if err := markFast(ctx, tx, settled); err != nil {
		return nil, err
	}
	for _, fc := range settled {
		recs[fc.j] = fc.rec
	}
	return recs, nil
}

// priceFast loads the content and terms of every distinct (content, event
// time) of fast in one statement, and builds each checkout's new purchase
// with its split. It returns the checkouts priced; the others (content
// missing, deleted or of another organization, a split that fails) are
// left to the per-event path, which names the fault.
func (f *family) priceFast(ctx context.Context, tx bun.Tx, fast []*fastCheckout) ([]*fastCheckout, error) {
	keyOf := make(map[split.ContentAt]int, len(fast))
	var keys []split.ContentAt
	for _, fc := range fast {
		k := split.ContentAt{ContentID: fc.meta.ContentID, At: fc.ev.At}
		if _, ok := keyOf[k]; !ok {
			keyOf[k] = len(keys)
			keys = append(keys, k)
		}
	}
	cts, err := split.ContentTermsAtMany(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	priced := make([]*fastCheckout, 0, len(fast))
	for _, fc := range fast {
		ct := cts[keyOf[split.ContentAt{ContentID: fc.meta.ContentID, At: fc.ev.At}]]
		if !ct.Found || ct.Content.DeletedAt != nil || ct.Content.OrganizationID != fc.meta.OrganizationID {
			continue
		}
		p, err := f.newPurchase(*fc.ev, fc.s, fc.meta, ct.Content.CreatorID, ct.Terms, model.PurchaseCompleted)
		if err != nil {
			continue
		}
		fc.p = p
		priced = append(priced, fc)
	}
	return priced, nil
}

// insertFast inserts the purchases of priced in one statement, in session
// order, with both unique keys as arbiters (as insertPurchase); a session
// whose row is not returned had one already (or waited for a concurrent
// insert that committed), which is locked and looked at. It returns the
// checkouts whose purchase it created (applied, in batch order) and those
// settled: the applied and, in session order with them, those whose
// purchase was completed already (duplicates). Every other is left to the
// per-event path: a pending purchase completes the per-event way, a deleted
// one is recorded there, and no row at all means the payment intent belongs
// to another session's purchase (payment_intent_conflict).
func insertFast(ctx context.Context, tx bun.Tx, priced []*fastCheckout) (applied, settled []*fastCheckout, err error) {
	slices.SortFunc(priced, func(a, b *fastCheckout) int { return strings.Compare(a.s.ID, b.s.ID) })
	rows := make([]model.Purchase, len(priced))
	for j, fc := range priced {
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
	existing, err := lockExisting(ctx, tx, priced, isNew)
	if err != nil {
		return nil, nil, err
	}
	for _, fc := range priced {
		if isNew[fc.s.ID] {
			fc.rec = &eventtx.Record{}
			applied = append(applied, fc)
			settled = append(settled, fc)
			continue
		}
		p := existing[fc.s.ID]
		if p == nil || p.DeletedAt != nil {
			continue
		}
		if _, changed := Transition(stateOf(p), TriggerPaid); changed {
			continue
		}
		fc.rec = &eventtx.Record{}
		fc.rec.Link(p.ID)
		fc.rec.Duplicate(fmt.Sprintf("purchase %s is %s; %s changes nothing", p.ID, p.Status, TriggerPaid))
		settled = append(settled, fc)
	}
	slices.SortFunc(applied, func(a, b *fastCheckout) int { return a.j - b.j }) // effects in batch order
	return applied, settled, nil
}

// lockExisting locks, in session order, the purchases of the sessions of
// priced whose insert found a row.
func lockExisting(ctx context.Context, tx bun.Tx, priced []*fastCheckout, isNew map[string]bool) (map[string]*model.Purchase, error) {
	var old []string
	for _, fc := range priced {
		if !isNew[fc.s.ID] {
			old = append(old, fc.s.ID)
		}
	}
	existing := make(map[string]*model.Purchase, len(old))
	if len(old) == 0 {
		return existing, nil
	}
	var ps []model.Purchase
	err := tx.NewSelect().Model(&ps).WhereAllWithDeleted().Where("stripe_checkout_session_id IN (?)", bun.In(old)).
		OrderExpr("stripe_checkout_session_id").For("UPDATE").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock purchases of %d checkout sessions: %w", len(old), err)
	}
	for j := range ps {
		existing[ps[j].StripeCheckoutSessionID] = &ps[j]
	}
	return existing, nil
}

// outboxFast writes the PURCHASES events of the applied checkouts in one
// statement, in batch order, and records their effects.
func (f *family) outboxFast(ctx context.Context, tx bun.Tx, applied []*fastCheckout, now time.Time) error {
	if len(applied) == 0 {
		return nil
	}
	obs := make([]model.Outbox, 0, len(applied))
	for _, fc := range applied {
		p := fc.p
		to := stateOf(p)
		kind := kindOf(State{}, to)
		data := dataOf(p, "", f.cfg.Access.Grants(to), fc.ev.ID)
		row, err := outbox.NewRow(ctx, streams.PurchaseSubject(kind), streams.PurchaseEventType(kind), p.ID, data, now)
		if err != nil {
			return err
		}
		obs = append(obs, row)
		fx := f.effects(fc.rec)
		fx.status(p.Currency, to.Status)
		fx.revenue(p.Currency, split.Split{Amount: p.AmountPaidCents, Platform: p.PlatformFeeCents,
			Organization: p.OrganizationFeeCents, Creator: p.CreatorPayoutCents})
		fc.rec.Link(p.ID)
		fc.rec.Applied()
	}
	if _, err := tx.NewInsert().Model(&obs).Exec(ctx); err != nil {
		return fmt.Errorf("outbox: insert %d events: %w", len(obs), err)
	}
	return nil
}

// markFast completes the checkout_sessions rows the purchase API created
// for the settled sessions (applied or a duplicate, as the per-event path
// marks each paid completion) in one statement, in session order. The
// sessions of a selection are distinct.
func markFast(ctx context.Context, tx bun.Tx, settled []*fastCheckout) error {
	if len(settled) == 0 {
		return nil
	}
	ids, ats := make([]string, len(settled)), make([]time.Time, len(settled))
	for j, fc := range settled {
		ids[j], ats[j] = fc.s.ID, fc.ev.At
	}
	return markSessionsComplete(ctx, tx, ids, ats)
}

// objectKeys returns the ids by which ev's data.object can reach a purchase:
// its own id (a checkout session, charge, dispute or payment intent), its
// payment intent and its charge, whether Stripe sent them as ids or
// expanded objects.
func objectKeys(ev *eventtx.Event) []string {
	var keys []string
	add := func(id string) {
		if id != "" {
			keys = append(keys, id)
		}
	}
	switch o := ev.Object.(type) {
	case *checkoutObject: // a checkout session has no charge
		add(o.ID)
		add(string(o.PaymentIntent))
	case *stripe.Charge:
		add(o.ID)
		if o.PaymentIntent != nil {
			add(o.PaymentIntent.ID)
		}
	case *stripe.Dispute:
		add(o.ID)
		if o.PaymentIntent != nil {
			add(o.PaymentIntent.ID)
		}
		if o.Charge != nil {
			add(o.Charge.ID)
		}
	case *stripe.PaymentIntent:
		add(o.ID)
	}
	return keys
}
