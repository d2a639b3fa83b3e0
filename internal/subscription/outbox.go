package subscription

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/model"
)

// Kinds of the subscriptions.* domain events: the last token of the subject
// (subscriptions.<kind>) and the middle of the CloudEvents type
// (com.paystream.subscription.<kind>.v1). They are written to the outbox in
// the transaction of the change they report and relayed to the PURCHASES
// stream (docs/subscriptions.md, "Events for downstream consumers").
const (
	EventStarted  = "started"  // first grants access (trialing or active; past_due when first seen so)
	EventRenewed  = "renewed"  // a renewal invoice (subscription_cycle) was paid
	EventPastDue  = "past_due" // a renewal failed: access kept for the plan's grace days
	EventCanceled = "canceled" // Stripe canceled it (status canceled)
	EventExpired  = "expired"  // its access ended: once per end, by the event or the sweeper
)

// SubjectPrefix is the subject prefix of the subscription events, one of
// streams.DomainSubjectPrefixes.
const SubjectPrefix = "subscriptions."

// EventVersion is the version suffix of every current type; a change that
// breaks consumers gets a new version, published beside the old.
const EventVersion = "v1"

// Subject returns the subject of kind, subscriptions.<kind>.
func Subject(kind string) string { return SubjectPrefix + kind }

// EventType returns the CloudEvents type of kind,
// com.paystream.subscription.<kind>.v1.
func EventType(kind string) string { return "com.paystream.subscription." + kind + "." + EventVersion }

// aggregateSpace names subscriptions' aggregate ids.
var aggregateSpace = uuid.MustParse("6f1c2a9e-8b57-4d0e-9c31-5a4e7f2b8d60")

// AggregateID is the outbox aggregate id (and CloudEvents subject) of a
// subscription's events: the outbox keys aggregates by uuid, and a Stripe
// subscription id (sub_…) is not one, so it is a name-based (version 5) uuid
// of the id. The id itself is data.subscription_id.
func AggregateID(subscriptionID string) uuid.UUID {
	return uuid.NewSHA1(aggregateSpace, []byte(subscriptionID))
}

// EventData is the data of a subscription event: the subscription as it
// stands after the change the event reports. Times are UTC; amounts are
// integer minor units of Plan.Currency.
type EventData struct {
	SubscriptionID     string       `json:"subscription_id"`
	CustomerID         string       `json:"customer_id"`
	PlanID             uuid.UUID    `json:"plan_id"`
	OrganizationID     uuid.UUID    `json:"organization_id"`
	CreatorID          string       `json:"creator_id,omitempty"` // absent for an organization plan
	Plan               PlanData     `json:"plan"`
	Status             string       `json:"status"`
	PreviousStatus     string       `json:"previous_status"` // "" when the change created it in paystream
	CurrentPeriodStart time.Time    `json:"current_period_start"`
	CurrentPeriodEnd   time.Time    `json:"current_period_end"`
	CancelAtPeriodEnd  bool         `json:"cancel_at_period_end"`
	CanceledAt         *time.Time   `json:"canceled_at,omitempty"`
	EndedAt            *time.Time   `json:"ended_at,omitempty"`
	PastDueSince       *time.Time   `json:"past_due_since,omitempty"`
	AccessUntil        *time.Time   `json:"access_until"` // null: no access
	Reason             string       `json:"reason,omitempty"`
	Invoice            *InvoiceData `json:"invoice,omitempty"` // renewed: the invoice paid
	Stripe             StripeRefs   `json:"stripe"`
	Livemode           bool         `json:"livemode"`
}

// PlanData is the plan a subscription is to.
type PlanData struct {
	Name          string `json:"name"`
	PriceCents    int64  `json:"price_cents"`
	Currency      string `json:"currency"`
	Interval      string `json:"interval"`
	IntervalCount int    `json:"interval_count"`
	GraceDays     int    `json:"grace_days"`
}

// InvoiceData is a paid invoice with its split.
type InvoiceData struct {
	ID                   string    `json:"id"`
	BillingReason        string    `json:"billing_reason,omitempty"`
	PeriodStart          time.Time `json:"period_start"`
	PeriodEnd            time.Time `json:"period_end"`
	AmountPaidCents      int64     `json:"amount_paid_cents"`
	Currency             string    `json:"currency"`
	PlatformFeeCents     int64     `json:"platform_fee_cents"`
	OrganizationFeeCents int64     `json:"organization_fee_cents"`
	CreatorPayoutCents   int64     `json:"creator_payout_cents"`
	PaidAt               time.Time `json:"paid_at"`
}

// StripeRefs are the Stripe ids behind an event; EventID is empty for the
// sweeper's expired events, which no Stripe event caused.
type StripeRefs struct {
	CustomerID string `json:"customer_id,omitempty"`
	EventID    string `json:"event_id,omitempty"`
}

// dataOf is the event data of s (its Plan loaded) as written.
func dataOf(s *model.Subscription, previous, eventID string) EventData {
	d := EventData{
		SubscriptionID: s.ID, CustomerID: s.CustomerID, PlanID: s.PlanID, Status: s.Status, PreviousStatus: previous,
		CurrentPeriodStart: s.CurrentPeriodStart.UTC(), CurrentPeriodEnd: s.CurrentPeriodEnd.UTC(),
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CanceledAt: s.CanceledAt, EndedAt: s.EndedAt,
		PastDueSince: s.PastDueSince, AccessUntil: s.AccessUntil, Livemode: s.Livemode,
		Stripe: StripeRefs{EventID: eventID},
	}
	if s.StripeCustomerID != nil {
		d.Stripe.CustomerID = *s.StripeCustomerID
	}
	if p := s.Plan; p != nil {
		d.OrganizationID = p.OrganizationID
		if p.CreatorID != nil {
			d.CreatorID = *p.CreatorID
		}
		d.Plan = PlanData{Name: p.Name, PriceCents: p.PriceCents, Currency: p.Currency, Interval: p.Interval,
			IntervalCount: p.IntervalCount, GraceDays: p.GraceDays}
	}
	return d
}

// invoiceData is the data of a paid invoice.
func invoiceData(inv *model.SubscriptionInvoice) *InvoiceData {
	d := &InvoiceData{ID: inv.ID, PeriodStart: inv.PeriodStart.UTC(), PeriodEnd: inv.PeriodEnd.UTC(),
		AmountPaidCents: inv.AmountPaidCents, Currency: inv.Currency, PlatformFeeCents: inv.PlatformFeeCents,
		OrganizationFeeCents: inv.OrganizationFeeCents, CreatorPayoutCents: inv.CreatorPayoutCents, PaidAt: inv.PaidAt.UTC()}
	if inv.BillingReason != nil {
		d.BillingReason = *inv.BillingReason
	}
	return d
}

// addEvent writes the kind event of d into the outbox through idb, the
// transaction of the change.
func addEvent(ctx context.Context, idb bun.IDB, kind string, d EventData, now time.Time) error {
	if _, err := outbox.Add(ctx, idb, Subject(kind), EventType(kind), AggregateID(d.SubscriptionID), d, now); err != nil {
		return fmt.Errorf("subscription %s: %w", d.SubscriptionID, err)
	}
	return nil
}
