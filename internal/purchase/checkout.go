package purchase

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/model"
)

// Checkout metadata keys: the contract with the checkout creator.
const (
	MetaCustomerID     = "customerId"
	MetaContentID      = "contentId"
	MetaOrganizationID = "organizationId"
	MetaAmountPaid     = "amountPaidCents"
	MetaCurrency       = "currency"
)

var (
	currencyRe = regexp.MustCompile(`^[a-z]{3}$`)
	amountRe   = regexp.MustCompile(`^[0-9]{1,13}$`)
)

// session is what paystream reads of a Stripe checkout session.
type session struct {
	ID               string
	PaymentStatus    string
	PaymentIntentID  string
	StripeCustomerID string
	AmountTotal      int64
	Currency         string
	Livemode         bool
	Metadata         map[string]string
}

// checkoutObject is the part of a Stripe Checkout Session object paystream
// reads: decoding only these fields, instead of stripe-go's whole
// CheckoutSession type with its hundred nested pointers, halves the cost of
// the one JSON decode every checkout pays.
type checkoutObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Mode          string            `json:"mode"` // payment; subscription sessions go to Config.Subscriptions
	PaymentStatus string            `json:"payment_status"`
	AmountTotal   int64             `json:"amount_total"`
	Currency      string            `json:"currency"`
	Livemode      bool              `json:"livemode"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent stripeevent.Ref   `json:"payment_intent"`
	Customer      stripeevent.Ref   `json:"customer"`
}

// sessionOf is the session of a checkout.session.* event's data.object.
func sessionOf(ev eventtx.Event, cs *checkoutObject) (session, error) {
	if err := checkObject(ev, cs.ID, cs.Object, objectCheckoutSession); err != nil {
		return session{}, err
	}
	if err := checkRefs(ev, "payment_intent", string(cs.PaymentIntent), "customer", string(cs.Customer)); err != nil {
		return session{}, err
	}
	return session{
		ID: cs.ID, PaymentStatus: cs.PaymentStatus, AmountTotal: cs.AmountTotal, Currency: cs.Currency,
		Livemode: cs.Livemode, Metadata: cs.Metadata, PaymentIntentID: string(cs.PaymentIntent),
		StripeCustomerID: string(cs.Customer),
	}, nil
}

// purchaseMeta is the validated checkout metadata.
type purchaseMeta struct {
	CustomerID     string
	ContentID      uuid.UUID
	OrganizationID uuid.UUID
	Amount         int64
	Currency       string
}

// parseMetadata validates the metadata contract against the session: every
// key present and well formed, amount and currency equal to what Stripe
// charged. Each failure names the session and what to fix.
func parseMetadata(s session) (purchaseMeta, error) {
	var missing []string
	for _, k := range []string{MetaCustomerID, MetaContentID, MetaOrganizationID, MetaAmountPaid, MetaCurrency} {
		if strings.TrimSpace(s.Metadata[k]) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return purchaseMeta{}, fault.New(fault.Invalid, "metadata_missing",
			"checkout session %s lacks metadata %s; the checkout creator must set %s, %s, %s, %s and %s",
			s.ID, strings.Join(missing, ", "), MetaCustomerID, MetaContentID, MetaOrganizationID, MetaAmountPaid, MetaCurrency)
	}
	invalid := func(key, why string) error {
		return fault.New(fault.Invalid, "metadata_invalid", "checkout session %s: metadata %s=%q %s",
			s.ID, key, s.Metadata[key], why)
	}
	m := purchaseMeta{CustomerID: s.Metadata[MetaCustomerID], Currency: s.Metadata[MetaCurrency]}
	// The purchase API applies the same rule to customer_id, so a
	// customer id it accepted is never refused here.
	if why := text.CustomerID(m.CustomerID); why != "" {
		return purchaseMeta{}, invalid(MetaCustomerID, why)
	}
	var err error
	if m.ContentID, err = uuid.Parse(s.Metadata[MetaContentID]); err != nil {
		return purchaseMeta{}, invalid(MetaContentID, "is not a uuid")
	}
	if m.OrganizationID, err = uuid.Parse(s.Metadata[MetaOrganizationID]); err != nil {
		return purchaseMeta{}, invalid(MetaOrganizationID, "is not a uuid")
	}
	if !amountRe.MatchString(s.Metadata[MetaAmountPaid]) {
		return purchaseMeta{}, invalid(MetaAmountPaid, "is not a non-negative integer of minor units")
	}
	if m.Amount, err = strconv.ParseInt(s.Metadata[MetaAmountPaid], 10, 64); err != nil || m.Amount > split.MaxAmount {
		return purchaseMeta{}, invalid(MetaAmountPaid, fmt.Sprintf("is above the supported maximum %d", split.MaxAmount))
	}
	if !currencyRe.MatchString(m.Currency) {
		return purchaseMeta{}, invalid(MetaCurrency, "is not a lower-case ISO 4217 code such as usd")
	}
	if m.Amount != s.AmountTotal {
		return purchaseMeta{}, fault.New(fault.Invalid, "amount_mismatch",
			"checkout session %s: metadata %s=%d but Stripe charged amount_total=%d; fix the checkout creator, then replay",
			s.ID, MetaAmountPaid, m.Amount, s.AmountTotal)
	}
	if m.Currency != s.Currency {
		return purchaseMeta{}, fault.New(fault.Invalid, "currency_mismatch",
			"checkout session %s: metadata %s=%q but Stripe charged in %q", s.ID, MetaCurrency, m.Currency, s.Currency)
	}
	return m, nil
}

// checkoutRoute handles a checkout.session.* event. fixed is the trigger of
// the event type; "" means checkout.session.completed, whose trigger depends
// on the session's payment_status.
func (f *family) checkoutRoute(fixed Trigger) func(context.Context, bun.Tx, eventtx.Event, *checkoutObject, *eventtx.Record) error {
	return func(ctx context.Context, tx bun.Tx, ev eventtx.Event, cs *checkoutObject, rec *eventtx.Record) error {
		s, err := sessionOf(ev, cs)
		if err != nil {
			return err
		}
		trig := fixed
		if trig == "" {
			switch s.PaymentStatus {
			case string(stripe.CheckoutSessionPaymentStatusPaid), string(stripe.CheckoutSessionPaymentStatusNoPaymentRequired):
				trig = TriggerPaid
			case string(stripe.CheckoutSessionPaymentStatusUnpaid):
				trig = TriggerUnpaid
			default:
				return fault.New(fault.Invalid, "invalid_payload", "checkout session %s has unknown payment_status %q", s.ID, s.PaymentStatus)
			}
		}
		if err := f.applyCheckout(ctx, tx, ev, s, trig, rec); err != nil {
			return err
		}
		// After the purchase and access, as on the set-based path: both
		// paths lock a session's purchase before its checkout_sessions row.
		return MarkCheckoutSession(ctx, tx, s.ID, sessionStatusOf(trig), ev.At)
	}
}

// applyCheckout moves the purchase of session s by trig, creating it when the
// trigger creates purchases and none exists.
func (f *family) applyCheckout(ctx context.Context, tx bun.Tx, ev eventtx.Event, s session, trig Trigger, rec *eventtx.Record) error {
	// Expiry needs no metadata: it only fails an existing pending purchase.
	var meta purchaseMeta
	if trig != TriggerExpired {
		var err error
		if meta, err = parseMetadata(s); err != nil {
			return err
		}
	}
	p, err := lockBySession(ctx, tx, s.ID)
	if err != nil {
		return err
	}
	if p == nil {
		to, changed := Transition(State{}, trig)
		if !changed {
			rec.Recorded(fmt.Sprintf("no purchase for checkout session %s; nothing to %s", s.ID, trig))
			return nil
		}
		c, terms, err := contentFor(ctx, tx, meta, ev.At)
		if err != nil {
			return err
		}
		np, err := f.newPurchase(ev, s, meta, c.CreatorID, terms, to.Status)
		if err != nil {
			return err
		}
		inserted, err := insertPurchase(ctx, tx, np)
		if err != nil {
			return err
		}
		if inserted {
			return f.changed(ctx, tx, ev, rec, change{from: State{}, p: np, reason: string(trig)})
		}
		// A concurrent transaction created it between our lookup and insert
		// (the insert waited for it to commit): continue with its row.
		if p, err = lockBySession(ctx, tx, s.ID); err != nil {
			return err
		}
		if p == nil {
			// Not our session: the payment intent belongs to another
			// session's purchase. Stripe never does this; the data is wrong.
			return fault.New(fault.Invalid, "payment_intent_conflict",
				"checkout session %s: payment intent %s already belongs to the purchase of another session", s.ID, s.PaymentIntentID)
		}
	}
	if p.DeletedAt != nil {
		rec.Link(p.ID)
		rec.Recorded(fmt.Sprintf("purchase %s was deleted; event not applied", p.ID))
		return nil
	}
	from := stateOf(p)
	to, changed := Transition(from, trig)
	if !changed {
		rec.Link(p.ID)
		rec.Duplicate(fmt.Sprintf("purchase %s is %s; %s changes nothing", p.ID, p.Status, trig))
		return nil
	}
	switch to.Status {
	case model.PurchaseCompleted:
		// The split is fixed when the payment completes, at that event's
		// time; a pending purchase only carried a provisional one. The
		// terms are those of the content's organization, which is the
		// purchase's (composite foreign key), and of its creator, whose
		// share it is: the creator snapshot is taken with them.
		c, terms, err := split.ContentTermsAt(ctx, tx, p.ContentID, ev.At)
		if err != nil {
			return fmt.Errorf("load content %s: %w", p.ContentID, err)
		}
		s2, err := split.Compute(p.AmountPaidCents, terms)
		if err != nil {
			return err
		}
		setSplit(p, s2)
		p.CreatorID = c.CreatorID
		at := ev.At
		p.PurchasedAt = &at
	case model.PurchaseFailed:
		at, reason := ev.At, string(trig)
		p.FailedAt, p.FailureReason = &at, &reason
	}
	if p.StripePaymentIntentID == nil && s.PaymentIntentID != "" {
		p.StripePaymentIntentID = &s.PaymentIntentID
	}
	if p.StripeCustomerID == nil && s.StripeCustomerID != "" {
		p.StripeCustomerID = &s.StripeCustomerID
	}
	p.Status, p.UpdatedAt = to.Status, f.cfg.Now().UTC()
	if err := updatePurchase(ctx, tx, p); err != nil {
		return err
	}
	return f.changed(ctx, tx, ev, rec, change{from: from, p: p, reason: string(trig)})
}

// newPurchase builds the purchase a checkout event creates, with the split
// of terms, the terms in force at the event's time, and the content's
// creator.
func (f *family) newPurchase(ev eventtx.Event, s session, meta purchaseMeta, creatorID string, terms split.Terms, status string) (*model.Purchase, error) {
	sp, err := split.Compute(meta.Amount, terms)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new purchase id: %w", err)
	}
	now := f.cfg.Now().UTC()
	p := &model.Purchase{
		ID: id, CustomerID: meta.CustomerID, ContentID: meta.ContentID, OrganizationID: meta.OrganizationID,
		CreatorID: creatorID, AmountPaidCents: meta.Amount, Currency: meta.Currency,
		StripeCheckoutSessionID: s.ID, Livemode: s.Livemode, Status: status,
		CreatedAt: now, UpdatedAt: now,
	}
	setSplit(p, sp)
	if s.PaymentIntentID != "" {
		p.StripePaymentIntentID = &s.PaymentIntentID
	}
	if s.StripeCustomerID != "" {
		p.StripeCustomerID = &s.StripeCustomerID
	}
	at := ev.At
	switch status {
	case model.PurchaseCompleted:
		p.PurchasedAt = &at
	case model.PurchaseFailed:
		reason := string(TriggerPaymentFailed)
		p.FailedAt, p.FailureReason = &at, &reason
	}
	return p, nil
}

func setSplit(p *model.Purchase, s split.Split) {
	p.PlatformFeeCents, p.OrganizationFeeCents, p.CreatorPayoutCents = s.Platform, s.Organization, s.Creator
	p.PlatformFeeBps, p.OrganizationFeeBps = s.PlatformBps, s.OrganizationBps
	p.PlatformAgreementID, p.PlatformFeeConfigID, p.CreatorOrgAgreementID =
		s.PlatformAgreementID, s.PlatformFeeConfigID, s.CreatorOrgAgreementID
}

// contentFor returns the live content of meta, checked against its
// organization, and the terms in force at t for its creator and
// organization, in one statement (split.ContentTermsAt).
func contentFor(ctx context.Context, tx bun.IDB, meta purchaseMeta, t time.Time) (*model.Content, split.Terms, error) {
	c, terms, err := split.ContentTermsAt(ctx, tx, meta.ContentID, t)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && c.DeletedAt != nil) {
		return nil, split.Terms{}, fault.New(fault.Invalid, "unknown_content",
			"content %s of the checkout does not exist or was deleted; create it (or fix metadata contentId), then replay", meta.ContentID)
	}
	if err != nil {
		return nil, split.Terms{}, fmt.Errorf("load content %s: %w", meta.ContentID, err)
	}
	if c.OrganizationID != meta.OrganizationID {
		return nil, split.Terms{}, fault.New(fault.Invalid, "content_org_mismatch",
			"content %s belongs to organization %s, but the checkout names organization %s", c.ID, c.OrganizationID, meta.OrganizationID)
	}
	return &c, terms, nil
}
