package subscription

import (
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
)

// The structs below are the parts of Stripe objects paystream reads, with
// the fields of both payload shapes side by side: stripe-go v76 types know
// only API 2023-10-16, where the period is on the subscription and an
// invoice names its subscription and charge at the top level.

// subscriptionObject is a Stripe Subscription.
type subscriptionObject struct {
	ID       string          `json:"id"`
	Object   string          `json:"object"`
	Customer stripeevent.Ref `json:"customer"`
	Status   string          `json:"status"`
	// Up to API 2025-02-24 the period is the subscription's …
	CurrentPeriodStart int64 `json:"current_period_start"`
	CurrentPeriodEnd   int64 `json:"current_period_end"`
	// … from 2025-03-31 each item has its own.
	Items struct {
		Data []struct {
			CurrentPeriodStart int64 `json:"current_period_start"`
			CurrentPeriodEnd   int64 `json:"current_period_end"`
		} `json:"data"`
	} `json:"items"`
	CancelAtPeriodEnd bool              `json:"cancel_at_period_end"`
	CancelAt          int64             `json:"cancel_at"`
	CanceledAt        int64             `json:"canceled_at"`
	EndedAt           int64             `json:"ended_at"`
	TrialStart        int64             `json:"trial_start"`
	TrialEnd          int64             `json:"trial_end"`
	StartDate         int64             `json:"start_date"`
	Livemode          bool              `json:"livemode"`
	Metadata          map[string]string `json:"metadata"`
	// CancellationDetails says why a subscription was canceled
	// (cancellation_requested, payment_failed, payment_disputed).
	CancellationDetails *struct {
		Reason string `json:"reason"`
	} `json:"cancellation_details"`
}

// period returns the subscription's current period in whichever shape it
// came: the top-level fields, or the items' (the earliest start and the
// latest end, so a subscription with several items is paid for as long as
// its longest item; paystream's plans have one).
func (o *subscriptionObject) period() (start, end int64) {
	if o.CurrentPeriodStart > 0 || o.CurrentPeriodEnd > 0 {
		return o.CurrentPeriodStart, o.CurrentPeriodEnd
	}
	for _, it := range o.Items.Data {
		if it.CurrentPeriodStart > 0 && (start == 0 || it.CurrentPeriodStart < start) {
			start = it.CurrentPeriodStart
		}
		end = max(end, it.CurrentPeriodEnd)
	}
	return start, end
}

// invoiceObject is a Stripe Invoice.
type invoiceObject struct {
	ID       string          `json:"id"`
	Object   string          `json:"object"`
	Customer stripeevent.Ref `json:"customer"`
	// Up to API 2025-02-24 …
	Subscription        stripeevent.Ref `json:"subscription"`
	SubscriptionDetails *struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
	Charge        stripeevent.Ref `json:"charge"`
	PaymentIntent stripeevent.Ref `json:"payment_intent"`
	// … from 2025-03-31: the subscription under parent, the payments in an
	// includable list (absent from webhooks unless expanded).
	Parent *struct {
		Type                string `json:"type"`
		SubscriptionDetails *struct {
			Subscription stripeevent.Ref   `json:"subscription"`
			Metadata     map[string]string `json:"metadata"`
		} `json:"subscription_details"`
	} `json:"parent"`
	Payments *struct {
		Data []invoicePaymentObject `json:"data"`
	} `json:"payments"`

	AmountPaid         int64  `json:"amount_paid"`
	Currency           string `json:"currency"`
	Status             string `json:"status"`
	BillingReason      string `json:"billing_reason"`
	AttemptCount       int64  `json:"attempt_count"`
	NextPaymentAttempt int64  `json:"next_payment_attempt"`
	StatusTransitions  struct {
		PaidAt int64 `json:"paid_at"`
	} `json:"status_transitions"`
	PeriodStart int64 `json:"period_start"`
	PeriodEnd   int64 `json:"period_end"`
	Lines       struct {
		Data []struct {
			Period struct {
				Start int64 `json:"start"`
				End   int64 `json:"end"`
			} `json:"period"`
		} `json:"data"`
	} `json:"lines"`
	Livemode bool  `json:"livemode"`
	Created  int64 `json:"created"`
}

// subscriptionRef returns the invoice's subscription and the snapshot of its
// metadata the invoice carries, in either shape.
func (o *invoiceObject) subscriptionRef() (string, map[string]string) {
	if p := o.Parent; p != nil && p.SubscriptionDetails != nil && p.SubscriptionDetails.Subscription != "" {
		return string(p.SubscriptionDetails.Subscription), p.SubscriptionDetails.Metadata
	}
	var md map[string]string
	if o.SubscriptionDetails != nil {
		md = o.SubscriptionDetails.Metadata
	}
	return string(o.Subscription), md
}

// payment returns the charge and payment intent that paid the invoice: the
// top-level fields up to 2025-02-24, else the first paid entry of payments
// when the payload includes it.
func (o *invoiceObject) payment() (charge, paymentIntent string) {
	if o.Charge != "" || o.PaymentIntent != "" {
		return string(o.Charge), string(o.PaymentIntent)
	}
	if o.Payments != nil {
		for _, p := range o.Payments.Data {
			if p.Status == "" || p.Status == "paid" {
				return string(p.Payment.Charge), string(p.Payment.PaymentIntent)
			}
		}
	}
	return "", ""
}

// servicePeriod is the period the invoice pays for: that of its lines (a
// subscription invoice's own period_start/period_end is the previous period,
// in which usage accrued), else the invoice's.
func (o *invoiceObject) servicePeriod() (start, end int64) {
	for _, l := range o.Lines.Data {
		if l.Period.Start > 0 && (start == 0 || l.Period.Start < start) {
			start = l.Period.Start
		}
		end = max(end, l.Period.End)
	}
	if start == 0 || end == 0 {
		return o.PeriodStart, o.PeriodEnd
	}
	return start, end
}

// invoicePaymentObject is a Stripe InvoicePayment (API 2025-03-31 and later).
type invoicePaymentObject struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Invoice stripeevent.Ref `json:"invoice"`
	Status  string          `json:"status"`
	Payment struct {
		Type          string          `json:"type"`
		PaymentIntent stripeevent.Ref `json:"payment_intent"`
		Charge        stripeevent.Ref `json:"charge"`
	} `json:"payment"`
}

// checkoutObject is a Stripe Checkout Session in subscription mode.
type checkoutObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Mode          string            `json:"mode"`
	Status        string            `json:"status"`
	PaymentStatus string            `json:"payment_status"`
	Subscription  stripeevent.Ref   `json:"subscription"`
	Customer      stripeevent.Ref   `json:"customer"`
	Invoice       stripeevent.Ref   `json:"invoice"`
	Livemode      bool              `json:"livemode"`
	Metadata      map[string]string `json:"metadata"`
}

// chargeObject is a Stripe Charge, as charge.refunded sends it.
type chargeObject struct {
	ID             string          `json:"id"`
	Object         string          `json:"object"`
	PaymentIntent  stripeevent.Ref `json:"payment_intent"`
	AmountRefunded int64           `json:"amount_refunded"`
	Refunded       bool            `json:"refunded"`
	Currency       string          `json:"currency"`
	Refunds        *struct {
		Data []struct {
			ID     string `json:"id"`
			Reason string `json:"reason"`
		} `json:"data"`
	} `json:"refunds"`
}

// disputeObject is a Stripe Dispute.
type disputeObject struct {
	ID            string          `json:"id"`
	Object        string          `json:"object"`
	Charge        stripeevent.Ref `json:"charge"`
	PaymentIntent stripeevent.Ref `json:"payment_intent"`
	Amount        int64           `json:"amount"`
	Currency      string          `json:"currency"`
	Status        string          `json:"status"`
}

// unix turns a Stripe timestamp into a time; 0 (absent or null) is the zero
// time.
func unix(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}
