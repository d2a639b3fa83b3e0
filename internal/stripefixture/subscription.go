package stripefixture

import (
	"fmt"
	"time"
)

// InvoicePaymentAPIVersion is the API version of invoice_payment.* events:
// they exist from 2025-03-31 on, where an invoice no longer names its
// payment.
const InvoicePaymentAPIVersion = "2025-03-31.basil"

// SubscriptionMetadata returns the metadata paystream's subscription
// checkout writes on the session and on subscription_data.metadata (so on
// the subscription and, as a snapshot, on each invoice).
func SubscriptionMetadata(customerID, planID, organizationID string) map[string]string {
	return map[string]string{"customerId": customerID, "planId": planID, "organizationId": organizationID}
}

// Subscription describes the subscription of customer.subscription.*
// events, in the 2023-10-16 shape (the period on the subscription). Zero
// times are null.
type Subscription struct {
	ID                     string // sub_…; generated when empty
	Customer               string // Stripe customer cus_…; generated when empty
	Status                 string // active when empty
	PeriodStart, PeriodEnd time.Time
	CancelAtPeriodEnd      bool
	CanceledAt, EndedAt    time.Time
	TrialStart, TrialEnd   time.Time
	StartDate              time.Time // the period start when zero
	CancelReason           string    // cancellation_details.reason: cancellation_requested, payment_failed, …
	Amount                 int64     // the price per interval, minor units
	Currency               string    // usd when empty
	Interval               string    // month when empty
	Metadata               map[string]string
}

// SubscriptionEvent builds customer.subscription.created, .updated,
// .deleted, .paused, .resumed or .trial_will_end.
func SubscriptionEvent(eventType string, m Meta, s Subscription) ([]byte, error) {
	switch eventType {
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end":
	default:
		return nil, fmt.Errorf("stripefixture: %q is not a customer.subscription event", eventType)
	}
	obj, err := load("subscription.json")
	if err != nil {
		return nil, err
	}
	orDefault(&s.ID, "sub_"+randID(24))
	orDefault(&s.Customer, "cus_"+randID(14))
	orDefault(&s.Status, "active")
	orDefault(&s.Currency, "usd")
	orDefault(&s.Interval, "month")
	if s.StartDate.IsZero() {
		s.StartDate = s.PeriodStart
	}
	obj["id"], obj["customer"], obj["status"], obj["currency"] = s.ID, s.Customer, s.Status, s.Currency
	obj["current_period_start"], obj["current_period_end"] = unixOrNull(s.PeriodStart), unixOrNull(s.PeriodEnd)
	obj["billing_cycle_anchor"] = unixOrNull(s.PeriodStart)
	obj["cancel_at_period_end"] = s.CancelAtPeriodEnd
	obj["cancel_at"] = nil
	if s.CancelAtPeriodEnd {
		obj["cancel_at"] = unixOrNull(s.PeriodEnd)
	}
	obj["canceled_at"], obj["ended_at"] = unixOrNull(s.CanceledAt), unixOrNull(s.EndedAt)
	obj["trial_start"], obj["trial_end"] = unixOrNull(s.TrialStart), unixOrNull(s.TrialEnd)
	obj["start_date"], obj["created"] = unixOrNull(s.StartDate), unixOrNull(s.StartDate)
	var reason any
	if s.CancelReason != "" {
		reason = s.CancelReason
	}
	obj["cancellation_details"] = map[string]any{"comment": nil, "feedback": nil, "reason": reason}
	obj["livemode"] = m.Livemode
	obj["metadata"] = metadata(s.Metadata)
	obj["latest_invoice"] = nil
	obj["default_payment_method"] = nil
	item := obj["items"].(map[string]any)["data"].([]any)[0].(map[string]any)
	item["subscription"] = s.ID
	for _, k := range []string{"plan", "price"} {
		p := item[k].(map[string]any)
		p["currency"] = s.Currency
		if k == "plan" {
			p["amount"], p["amount_decimal"], p["interval"] = s.Amount, fmt.Sprint(s.Amount), s.Interval
		} else {
			p["unit_amount"], p["unit_amount_decimal"] = s.Amount, fmt.Sprint(s.Amount)
			p["recurring"].(map[string]any)["interval"] = s.Interval
		}
	}
	obj["items"].(map[string]any)["url"] = "/v1/subscription_items?subscription=" + s.ID
	return envelope(eventType, m, obj)
}

// Invoice describes the invoice of invoice.paid and invoice.payment_failed,
// in the 2023-10-16 shape (the invoice names its subscription, charge and
// payment intent).
type Invoice struct {
	ID              string // in_…; generated when empty
	SubscriptionID  string
	Customer        string // cus_…; generated when empty
	ChargeID        string // ch_…; generated when empty
	PaymentIntentID string // pi_…; generated when empty
	Amount          int64  // amount_paid of a paid invoice, amount_due of a failed one
	Currency        string // usd when empty
	// BillingReason is subscription_create (the signup), subscription_cycle
	// (a renewal) or subscription_update; subscription_cycle when empty.
	BillingReason          string
	PeriodStart, PeriodEnd time.Time // the service period of its line
	PaidAt                 time.Time // status_transitions.paid_at of a paid invoice; the event time when zero
	AttemptCount           int64     // 1 when 0
	Metadata               map[string]string
}

// InvoiceEvent builds invoice.paid or invoice.payment_failed.
func InvoiceEvent(eventType string, m Meta, inv Invoice) ([]byte, error) {
	if eventType != "invoice.paid" && eventType != "invoice.payment_failed" {
		return nil, fmt.Errorf("stripefixture: %q is not an invoice event this package builds", eventType)
	}
	obj, err := load("invoice.json")
	if err != nil {
		return nil, err
	}
	orDefault(&inv.ID, "in_"+randID(24))
	orDefault(&inv.Customer, "cus_"+randID(14))
	orDefault(&inv.ChargeID, "ch_"+randID(24))
	orDefault(&inv.PaymentIntentID, "pi_"+randID(24))
	orDefault(&inv.Currency, "usd")
	orDefault(&inv.BillingReason, "subscription_cycle")
	if inv.AttemptCount == 0 {
		inv.AttemptCount = 1
	}
	paid := eventType == "invoice.paid"
	if paid && inv.PaidAt.IsZero() {
		inv.PaidAt = created(m)
	}
	obj["id"], obj["subscription"], obj["customer"] = inv.ID, inv.SubscriptionID, inv.Customer
	obj["charge"], obj["payment_intent"], obj["currency"] = inv.ChargeID, inv.PaymentIntentID, inv.Currency
	obj["billing_reason"], obj["attempt_count"], obj["livemode"] = inv.BillingReason, inv.AttemptCount, m.Livemode
	obj["amount_due"], obj["subtotal"], obj["total"] = inv.Amount, inv.Amount, inv.Amount
	obj["created"] = created(m).Add(-time.Minute).Unix()
	// A subscription invoice's own period is the usage period before its
	// service period (its line's); paystream reads the line.
	obj["period_start"], obj["period_end"] = unixOrNull(inv.PeriodStart), unixOrNull(inv.PeriodStart)
	st := obj["status_transitions"].(map[string]any)
	if paid {
		obj["status"], obj["paid"], obj["amount_paid"], obj["amount_remaining"] = "paid", true, inv.Amount, 0
		obj["next_payment_attempt"] = nil
		st["paid_at"] = inv.PaidAt.Unix()
	} else {
		obj["status"], obj["paid"], obj["amount_paid"], obj["amount_remaining"] = "open", false, 0, inv.Amount
		obj["next_payment_attempt"] = created(m).Add(3 * 24 * time.Hour).Unix()
		st["paid_at"] = nil
	}
	obj["subscription_details"] = map[string]any{"metadata": metadata(inv.Metadata)}
	lines := obj["lines"].(map[string]any)
	line := lines["data"].([]any)[0].(map[string]any)
	line["amount"], line["currency"], line["invoice"] = inv.Amount, inv.Currency, inv.ID
	line["period"] = map[string]any{"start": unixOrNull(inv.PeriodStart), "end": unixOrNull(inv.PeriodEnd)}
	line["metadata"] = metadata(inv.Metadata)
	line["subscription"] = inv.SubscriptionID
	lines["url"] = "/v1/invoices/" + inv.ID + "/lines"
	return envelope(eventType, m, obj)
}

// InvoicePayment describes the invoice payment of invoice_payment.paid.
type InvoicePayment struct {
	ID              string // inpay_…; generated when empty
	InvoiceID       string
	PaymentIntentID string
	Amount          int64
	Currency        string // usd when empty
}

// InvoicePaymentEvent builds invoice_payment.paid, an event of API
// 2025-03-31 and later (InvoicePaymentAPIVersion unless m says otherwise).
func InvoicePaymentEvent(m Meta, p InvoicePayment) ([]byte, error) {
	obj, err := load("invoice_payment.json")
	if err != nil {
		return nil, err
	}
	orDefault(&p.ID, "inpay_"+randID(24))
	orDefault(&p.Currency, "usd")
	orDefault(&m.APIVersion, InvoicePaymentAPIVersion)
	obj["id"], obj["invoice"], obj["currency"], obj["livemode"] = p.ID, p.InvoiceID, p.Currency, m.Livemode
	obj["amount_paid"], obj["amount_requested"] = p.Amount, p.Amount
	obj["payment"] = map[string]any{"type": "payment_intent", "payment_intent": p.PaymentIntentID}
	obj["created"] = created(m).Unix()
	obj["status_transitions"] = map[string]any{"canceled_at": nil, "paid_at": created(m).Unix()}
	return envelope("invoice_payment.paid", m, obj)
}

// SubscriptionCheckout describes a Checkout Session in subscription mode,
// completed.
type SubscriptionCheckout struct {
	SessionID      string // cs_test_…; generated when empty
	SubscriptionID string
	Customer       string // cus_…; generated when empty
	InvoiceID      string // the signup invoice; null when empty
	Amount         int64
	Currency       string // usd when empty
	Metadata       map[string]string
}

// SubscriptionCheckoutEvent builds checkout.session.completed of a session
// in subscription mode.
func SubscriptionCheckoutEvent(m Meta, c SubscriptionCheckout) ([]byte, error) {
	obj, err := load("checkout_session.json")
	if err != nil {
		return nil, err
	}
	orDefault(&c.SessionID, "cs_test_"+randID(58))
	orDefault(&c.Customer, "cus_"+randID(14))
	orDefault(&c.Currency, "usd")
	obj["id"], obj["mode"], obj["subscription"], obj["customer"] = c.SessionID, "subscription", c.SubscriptionID, c.Customer
	obj["amount_subtotal"], obj["amount_total"], obj["currency"] = c.Amount, c.Amount, c.Currency
	obj["payment_status"], obj["status"], obj["payment_intent"] = "paid", "complete", nil
	obj["invoice"] = nil
	if c.InvoiceID != "" {
		obj["invoice"] = c.InvoiceID
	}
	obj["livemode"] = m.Livemode
	obj["created"] = created(m).Add(-2 * time.Minute).Unix()
	obj["expires_at"] = created(m).Add(22 * time.Hour).Unix()
	obj["metadata"] = metadata(c.Metadata)
	return envelope("checkout.session.completed", m, obj)
}

// unixOrNull is t in Unix seconds, or JSON null for the zero time.
func unixOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

// Member is one subscription as an operator describes it (`paystream
// send`): the Stripe ids its events share, the plan it is to (the metadata
// contract), and the details of the event types that need them. Its
// current period starts at the event's time and lasts Interval.
type Member struct {
	SubscriptionID  string // sub_…; generated when empty
	InvoiceID       string // in_…; generated when empty
	PaymentIntentID string // pi_…; generated when empty
	ChargeID        string // ch_…; generated when empty

	CustomerID, PlanID, OrganizationID string // the metadata contract
	Amount                             int64  // the plan's price, minor units
	Currency                           string // usd when empty
	Interval                           string // month when empty

	Status        string // customer.subscription.*: from the event type when empty
	BillingReason string // invoice.*: subscription_cycle when empty
}

// MemberIDs are the Stripe ids an event built by MemberEvent names.
type MemberIDs struct{ Event, Subscription, Invoice, PaymentIntent, Charge string }

// MemberStatus is the status customer.subscription.<what> shows unless
// told otherwise: active, except deleted (canceled), paused (paused) and
// trial_will_end (trialing).
func MemberStatus(eventType string) string {
	switch eventType {
	case "customer.subscription.deleted":
		return "canceled"
	case "customer.subscription.paused":
		return "paused"
	case "customer.subscription.trial_will_end":
		return "trialing"
	}
	return "active"
}

// MemberEvent builds an event of type typ (customer.subscription.*,
// invoice.paid, invoice.payment_failed, invoice_payment.paid) about mb,
// generating the event id and the ids mb leaves empty, and returns the ids
// it names.
func MemberEvent(typ string, m Meta, mb Member) ([]byte, MemberIDs, error) {
	orDefault(&m.EventID, NewID("evt_", 24))
	ids := MemberIDs{Event: m.EventID, Subscription: mb.SubscriptionID, Invoice: mb.InvoiceID,
		PaymentIntent: mb.PaymentIntentID, Charge: mb.ChargeID}
	orDefault(&ids.Subscription, NewID("sub_", 24))
	orDefault(&ids.Invoice, NewID("in_", 24))
	orDefault(&ids.PaymentIntent, NewID("pi_", 24))
	orDefault(&ids.Charge, NewID("ch_", 24))
	orDefault(&mb.Interval, "month")
	start := created(m).Truncate(time.Second)
	end := start.AddDate(0, 1, 0)
	if mb.Interval == "year" {
		end = start.AddDate(1, 0, 0)
	}
	md := SubscriptionMetadata(mb.CustomerID, mb.PlanID, mb.OrganizationID)
	var body []byte
	var err error
	switch typ {
	case "invoice.paid", "invoice.payment_failed":
		body, err = InvoiceEvent(typ, m, Invoice{ID: ids.Invoice, SubscriptionID: ids.Subscription, ChargeID: ids.Charge,
			PaymentIntentID: ids.PaymentIntent, Amount: mb.Amount, Currency: mb.Currency, BillingReason: mb.BillingReason,
			PeriodStart: start, PeriodEnd: end, Metadata: md})
	case "invoice_payment.paid":
		ids.Subscription, ids.Charge = "", ""
		body, err = InvoicePaymentEvent(m, InvoicePayment{InvoiceID: ids.Invoice, PaymentIntentID: ids.PaymentIntent,
			Amount: mb.Amount, Currency: mb.Currency})
	default:
		ids.Invoice, ids.PaymentIntent, ids.Charge = "", "", ""
		status := mb.Status
		orDefault(&status, MemberStatus(typ))
		s := Subscription{ID: ids.Subscription, Status: status, PeriodStart: start, PeriodEnd: end, Amount: mb.Amount,
			Currency: mb.Currency, Interval: mb.Interval, Metadata: md}
		switch status {
		case "canceled":
			s.CanceledAt, s.EndedAt = start, start
		case "trialing", "paused":
			s.TrialStart, s.TrialEnd = start, end
		}
		body, err = SubscriptionEvent(typ, m, s)
	}
	return body, ids, err
}
