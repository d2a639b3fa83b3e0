package subscription

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/model"
)

// Stripe event types this family reads. Checkout, charge and dispute events
// are shared with purchases: the processor routes a checkout session by its
// mode (IsSubscriptionCheckout) and a refund or dispute to the invoice that
// owns the charge (ErrInvoiceNotFound otherwise).
const (
	TypeSubscriptionCreated      = "customer.subscription.created"
	TypeSubscriptionUpdated      = "customer.subscription.updated"
	TypeSubscriptionDeleted      = "customer.subscription.deleted"
	TypeSubscriptionPaused       = "customer.subscription.paused"
	TypeSubscriptionResumed      = "customer.subscription.resumed"
	TypeSubscriptionTrialWillEnd = "customer.subscription.trial_will_end"
	TypeInvoicePaid              = "invoice.paid"
	TypeInvoicePaymentFailed     = "invoice.payment_failed"
	TypeInvoicePaymentPaid       = "invoice_payment.paid"
	TypeCheckoutCompleted        = "checkout.session.completed"
	TypeChargeRefunded           = "charge.refunded"
	TypeDisputeCreated           = "charge.dispute.created"
	TypeDisputeClosed            = "charge.dispute.closed"
)

// EventTypes are the event types only this family handles (the route
// table's share); the shared ones above are routed by content.
var EventTypes = []string{
	TypeSubscriptionCreated, TypeSubscriptionUpdated, TypeSubscriptionDeleted, TypeSubscriptionPaused,
	TypeSubscriptionResumed, TypeSubscriptionTrialWillEnd, TypeInvoicePaid, TypeInvoicePaymentFailed,
	TypeInvoicePaymentPaid,
}

// Kind says which of Event's objects is set.
type Kind int

// Kinds of Event.
const (
	KindSubscription   Kind = iota + 1 // customer.subscription.*: Subscription
	KindCheckout                       // checkout.session.completed in subscription mode: Checkout
	KindInvoicePaid                    // Invoice
	KindInvoiceFailed                  // Invoice
	KindInvoicePayment                 // invoice_payment.paid: InvoicePayment
	KindRefund                         // charge.refunded: Refund
	KindDispute                        // charge.dispute.created / .closed: Dispute
)

// Event is one Stripe event of the family, decoded. Exactly the object of
// its Kind is set.
type Event struct {
	ID       string
	Type     string
	Created  time.Time // Stripe's created, to the second: the ordering key
	Livemode bool
	Kind     Kind

	Subscription   *Subscription
	Checkout       *Checkout
	Invoice        *Invoice
	InvoicePayment *InvoicePayment
	Refund         *Refund
	Dispute        *Dispute
}

// Facts are what Stripe says of a subscription at one moment: what the
// ordering rule orders. Zero times are absent fields.
type Facts struct {
	Status            string
	PeriodStart       time.Time
	PeriodEnd         time.Time
	CancelAtPeriodEnd bool
	CancelAt          time.Time
	CanceledAt        time.Time
	EndedAt           time.Time
	TrialStart        time.Time
	TrialEnd          time.Time
	StartedAt         time.Time
	StripeCustomerID  string
	Livemode          bool
}

// Subscription is a Stripe subscription as one payload (or a fetch) shows it.
type Subscription struct {
	ID string
	Facts
	Metadata map[string]string
	// CancelReason is Stripe's cancellation_details.reason, "" when none:
	// what the churn metrics and events say, never ordered or stored.
	CancelReason string
}

// decidable reports whether the payload says enough to be applied: a status
// paystream knows and a period. A payload that does not is settled by a
// fetch.
func (s *Subscription) decidable() bool {
	return knownStatus(s.Status) && !s.PeriodStart.IsZero() && s.PeriodEnd.After(s.PeriodStart)
}

// knownStatus reports whether status is one of Stripe's subscription
// statuses paystream stores.
func knownStatus(status string) bool {
	switch status {
	case model.SubscriptionIncomplete, model.SubscriptionIncompleteExpired, model.SubscriptionTrialing,
		model.SubscriptionActive, model.SubscriptionPastDue, model.SubscriptionCanceled,
		model.SubscriptionUnpaid, model.SubscriptionPaused:
		return true
	}
	return false
}

// Checkout is a completed Checkout Session in subscription mode.
type Checkout struct {
	ID               string
	SubscriptionID   string
	StripeCustomerID string
	PaymentStatus    string
	Metadata         map[string]string
}

// Invoice is a Stripe invoice of invoice.paid or invoice.payment_failed.
type Invoice struct {
	ID                   string
	SubscriptionID       string            // "" for an invoice of no subscription
	SubscriptionMetadata map[string]string // the subscription's metadata when the invoice was finalized
	StripeCustomerID     string
	AmountPaid           int64
	Currency             string
	Status               string
	BillingReason        string // subscription_create, subscription_cycle, subscription_update, …
	ChargeID             string // "" when the payload does not say (2025-03-31 and later)
	PaymentIntentID      string
	PaidAt               time.Time // status_transitions.paid_at
	PeriodStart          time.Time // the service period of its lines
	PeriodEnd            time.Time
	AttemptCount         int64
	NextPaymentAttempt   time.Time
	Livemode             bool
}

// InvoicePayment links an invoice to the payment that paid it.
type InvoicePayment struct {
	ID              string
	InvoiceID       string
	PaymentIntentID string
	ChargeID        string
	Status          string
}

// Refund is what charge.refunded says: the charge's cumulative refunded
// amount.
type Refund struct {
	ChargeID        string
	PaymentIntentID string
	AmountRefunded  int64
	Full            bool // Stripe's refunded: the whole charge
	Currency        string
	RefundID        string // the newest refund
	Reason          string
}

// Dispute is a charge.dispute.created or .closed.
type Dispute struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	Amount          int64
	Currency        string
	Status          string // Stripe's: warning_needs_response, needs_response, under_review, won, lost, warning_closed, …
	Closed          bool   // charge.dispute.closed
}

// envelope is the top level of a Stripe event.
type envelope struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Created  int64  `json:"created"`
	Livemode bool   `json:"livemode"`
	Data     struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// DecodeEvent reads a whole Stripe event body (see Decode).
func DecodeEvent(body []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fault.Wrap(err, fault.Invalid, "invalid_payload", "body is not a Stripe event")
	}
	return Decode(env.ID, env.Type, env.Created, env.Livemode, env.Data.Object)
}

// IsSubscriptionCheckout reports whether a checkout session object is in
// subscription mode, so the processor can route checkout.session.completed
// to this family rather than to purchases.
func IsSubscriptionCheckout(object []byte) bool {
	var o struct {
		Mode string `json:"mode"`
	}
	return json.Unmarshal(object, &o) == nil && o.Mode == "subscription"
}

// Decode reads the data.object of an event of the family, of either payload
// shape. A malformed payload is a fault.Invalid naming the event.
func Decode(id, typ string, created int64, livemode bool, object []byte) (Event, error) {
	ev := Event{ID: id, Type: typ, Created: unix(created), Livemode: livemode}
	if id == "" || created <= 0 {
		return Event{}, fault.New(fault.Invalid, "invalid_payload", "event %q of type %s has no id or created", id, typ)
	}
	if len(object) == 0 || string(object) == "null" {
		return Event{}, fault.New(fault.Invalid, "invalid_payload", "event %s has no data.object", id)
	}
	var err error
	switch typ {
	case TypeSubscriptionCreated, TypeSubscriptionUpdated, TypeSubscriptionDeleted, TypeSubscriptionPaused,
		TypeSubscriptionResumed, TypeSubscriptionTrialWillEnd:
		ev.Kind = KindSubscription
		ev.Subscription, err = DecodeSubscription(object)
	case TypeCheckoutCompleted:
		ev.Kind = KindCheckout
		ev.Checkout, err = decodeCheckout(object)
	case TypeInvoicePaid, TypeInvoicePaymentFailed:
		ev.Kind = KindInvoicePaid
		if typ == TypeInvoicePaymentFailed {
			ev.Kind = KindInvoiceFailed
		}
		ev.Invoice, err = decodeInvoice(object)
	case TypeInvoicePaymentPaid:
		ev.Kind = KindInvoicePayment
		ev.InvoicePayment, err = decodeInvoicePayment(object)
	case TypeChargeRefunded:
		ev.Kind = KindRefund
		ev.Refund, err = decodeRefund(object)
	case TypeDisputeCreated, TypeDisputeClosed:
		ev.Kind = KindDispute
		ev.Dispute, err = decodeDispute(object, typ == TypeDisputeClosed)
	default:
		return Event{}, fault.New(fault.Invalid, "unexpected_type", "event %s: type %s is not a subscription event", id, typ)
	}
	if err == nil {
		err = ev.checkIDs()
	}
	if err != nil {
		return Event{}, fault.Wrap(err, fault.Invalid, "invalid_payload", "event "+id+" ("+typ+")")
	}
	return ev, nil
}

// unmarshalObject decodes object into v and checks its object name and id.
func unmarshalObject(object []byte, name string, v any, id, got *string) error {
	if err := json.Unmarshal(object, v); err != nil {
		return fmt.Errorf("data.object is not a %s: %w", name, err)
	}
	if *id == "" || (*got != "" && *got != name) {
		return fmt.Errorf("data.object is %q %q, not a %s", *got, *id, name)
	}
	return nil
}

// DecodeSubscription reads a Stripe Subscription object of either shape: an
// event's data.object or the body of GET /v1/subscriptions/{id}.
func DecodeSubscription(object []byte) (*Subscription, error) {
	var o subscriptionObject
	if err := unmarshalObject(object, "subscription", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	start, end := o.period()
	reason := ""
	if o.CancellationDetails != nil {
		reason = o.CancellationDetails.Reason
	}
	return &Subscription{ID: o.ID, Metadata: o.Metadata, CancelReason: reason, Facts: Facts{
		Status: o.Status, PeriodStart: unix(start), PeriodEnd: unix(end), CancelAtPeriodEnd: o.CancelAtPeriodEnd,
		CancelAt: unix(o.CancelAt), CanceledAt: unix(o.CanceledAt), EndedAt: unix(o.EndedAt),
		TrialStart: unix(o.TrialStart), TrialEnd: unix(o.TrialEnd), StartedAt: unix(o.StartDate),
		StripeCustomerID: string(o.Customer), Livemode: o.Livemode,
	}}, nil
}

func decodeCheckout(object []byte) (*Checkout, error) {
	var o checkoutObject
	if err := unmarshalObject(object, "checkout.session", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	if o.Mode != "subscription" {
		return nil, fmt.Errorf("checkout session %s is in %q mode, not subscription", o.ID, o.Mode)
	}
	if o.Subscription == "" {
		return nil, fmt.Errorf("checkout session %s in subscription mode names no subscription", o.ID)
	}
	return &Checkout{ID: o.ID, SubscriptionID: string(o.Subscription), StripeCustomerID: string(o.Customer),
		PaymentStatus: o.PaymentStatus, Metadata: o.Metadata}, nil
}

func decodeInvoice(object []byte) (*Invoice, error) {
	var o invoiceObject
	if err := unmarshalObject(object, "invoice", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	sub, md := o.subscriptionRef()
	charge, pi := o.payment()
	start, end := o.servicePeriod()
	return &Invoice{
		ID: o.ID, SubscriptionID: sub, SubscriptionMetadata: md, StripeCustomerID: string(o.Customer),
		AmountPaid: o.AmountPaid, Currency: o.Currency, Status: o.Status, BillingReason: o.BillingReason,
		ChargeID: charge, PaymentIntentID: pi, PaidAt: unix(o.StatusTransitions.PaidAt),
		PeriodStart: unix(start), PeriodEnd: unix(end), AttemptCount: o.AttemptCount,
		NextPaymentAttempt: unix(o.NextPaymentAttempt), Livemode: o.Livemode,
	}, nil
}

func decodeInvoicePayment(object []byte) (*InvoicePayment, error) {
	var o invoicePaymentObject
	if err := unmarshalObject(object, "invoice_payment", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	if o.Invoice == "" {
		return nil, fmt.Errorf("invoice payment %s names no invoice", o.ID)
	}
	return &InvoicePayment{ID: o.ID, InvoiceID: string(o.Invoice), PaymentIntentID: string(o.Payment.PaymentIntent),
		ChargeID: string(o.Payment.Charge), Status: o.Status}, nil
}

func decodeRefund(object []byte) (*Refund, error) {
	var o chargeObject
	if err := unmarshalObject(object, "charge", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	r := &Refund{ChargeID: o.ID, PaymentIntentID: string(o.PaymentIntent), AmountRefunded: o.AmountRefunded,
		Full: o.Refunded, Currency: o.Currency}
	if o.Refunds != nil && len(o.Refunds.Data) > 0 {
		// Stripe lists refunds newest first; the newest explains the amount.
		r.RefundID, r.Reason = o.Refunds.Data[0].ID, o.Refunds.Data[0].Reason
	}
	return r, nil
}

func decodeDispute(object []byte, closed bool) (*Dispute, error) {
	var o disputeObject
	if err := unmarshalObject(object, "dispute", &o, &o.ID, &o.Object); err != nil {
		return nil, err
	}
	return &Dispute{ID: o.ID, ChargeID: string(o.Charge), PaymentIntentID: string(o.PaymentIntent),
		Amount: o.Amount, Currency: o.Currency, Status: o.Status, Closed: closed}, nil
}
