// Package stripefixture builds realistic Stripe webhook events (the JSON shapes
// of API version 2023-10-16, from embedded templates) and signs them the way
// Stripe does. Tests, `paystream send`, reconcile fakes and the load tool share
// it so every part of paystream sees the same payloads.
package stripefixture

import (
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// APIVersion is the Stripe API version the templates follow.
const APIVersion = "2023-10-16"

//go:embed templates/*.json
var templates embed.FS

// Meta is the event envelope: id, time, mode and API version.
type Meta struct {
	EventID    string    // evt_…; generated when empty
	Created    time.Time // event time; now when zero
	Livemode   bool
	APIVersion string // APIVersion when empty
}

// Checkout describes the checkout session of the checkout.session.* events.
type Checkout struct {
	SessionID       string            // cs_test_…; generated when empty
	PaymentIntentID string            // pi_…; generated when empty (none for expired sessions)
	Customer        string            // Stripe customer cus_…; generated when empty
	AmountTotal     int64             // minor units
	Currency        string            // ISO code, lower case; usd when empty
	PaymentStatus   string            // paid, unpaid, no_payment_required; derived from the event type when empty
	Metadata        map[string]string // the purchase metadata contract
}

// PurchaseMetadata returns the checkout metadata paystream's processor reads.
func PurchaseMetadata(customerID, contentID, organizationID string, amount int64, currency string) map[string]string {
	return map[string]string{
		"customerId":      customerID,
		"contentId":       contentID,
		"organizationId":  organizationID,
		"amountPaidCents": strconv.FormatInt(amount, 10),
		"currency":        currency,
	}
}

// CheckoutEvent builds checkout.session.completed, .async_payment_succeeded,
// .async_payment_failed or .expired.
func CheckoutEvent(eventType string, m Meta, c Checkout) ([]byte, error) {
	obj, err := load("checkout_session.json")
	if err != nil {
		return nil, err
	}
	orDefault(&c.SessionID, "cs_test_"+randID(58))
	orDefault(&c.Customer, "cus_"+randID(14))
	orDefault(&c.Currency, "usd")
	status, payment := "complete", "paid"
	switch eventType {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
	case "checkout.session.async_payment_failed":
		payment = "unpaid"
	case "checkout.session.expired":
		status, payment = "expired", "unpaid"
	default:
		return nil, fmt.Errorf("stripefixture: %q is not a checkout.session event", eventType)
	}
	orDefault(&c.PaymentStatus, payment)
	obj["id"] = c.SessionID
	obj["amount_subtotal"] = c.AmountTotal
	obj["amount_total"] = c.AmountTotal
	obj["currency"] = c.Currency
	obj["customer"] = c.Customer
	obj["payment_status"] = c.PaymentStatus
	obj["status"] = status
	obj["livemode"] = m.Livemode
	obj["created"] = created(m).Add(-2 * time.Minute).Unix()
	obj["expires_at"] = created(m).Add(22 * time.Hour).Unix()
	if eventType == "checkout.session.expired" && c.PaymentIntentID == "" {
		obj["payment_intent"] = nil
	} else {
		orDefault(&c.PaymentIntentID, "pi_"+randID(24))
		obj["payment_intent"] = c.PaymentIntentID
	}
	obj["metadata"] = metadata(c.Metadata)
	return envelope(eventType, m, obj)
}

// Refund is one refund of a charge.
type Refund struct {
	ID     string // re_…; generated when empty
	Amount int64
	Reason string // requested_by_customer when empty
}

// Charge describes the charge of a charge.refunded event.
type Charge struct {
	ChargeID        string // ch_…; generated when empty
	PaymentIntentID string
	Amount          int64
	Currency        string   // usd when empty
	Refunds         []Refund // newest first, as Stripe lists them
}

// ChargeRefundedEvent builds charge.refunded; amount_refunded is the sum of
// the refunds and refunded is true when it reaches the amount.
func ChargeRefundedEvent(m Meta, c Charge) ([]byte, error) {
	obj, err := load("charge.json")
	if err != nil {
		return nil, err
	}
	orDefault(&c.ChargeID, "ch_"+randID(24))
	orDefault(&c.Currency, "usd")
	var refunded int64
	refunds := make([]any, 0, len(c.Refunds))
	for _, r := range c.Refunds {
		ro, err := load("refund.json")
		if err != nil {
			return nil, err
		}
		orDefault(&r.ID, "re_"+randID(24))
		orDefault(&r.Reason, "requested_by_customer")
		ro["id"], ro["amount"], ro["reason"] = r.ID, r.Amount, r.Reason
		ro["charge"], ro["payment_intent"], ro["currency"] = c.ChargeID, c.PaymentIntentID, c.Currency
		ro["created"] = created(m).Unix()
		refunds = append(refunds, ro)
		refunded += r.Amount
	}
	obj["id"] = c.ChargeID
	obj["amount"], obj["amount_captured"], obj["amount_refunded"] = c.Amount, c.Amount, refunded
	obj["refunded"] = refunded >= c.Amount
	obj["currency"] = c.Currency
	obj["payment_intent"] = c.PaymentIntentID
	obj["livemode"] = m.Livemode
	obj["created"] = created(m).Add(-time.Hour).Unix()
	obj["refunds"] = map[string]any{
		"object": "list", "data": refunds, "has_more": false, "total_count": len(refunds),
		"url": "/v1/charges/" + c.ChargeID + "/refunds",
	}
	return envelope("charge.refunded", m, obj)
}

// Dispute describes the dispute of charge.dispute.* events.
type Dispute struct {
	DisputeID       string // du_…; generated when empty
	ChargeID        string
	PaymentIntentID string
	Amount          int64
	Currency        string // usd when empty
	Status          string // needs_response, under_review, won, lost, …
	Reason          string // fraudulent when empty
}

// DisputeEvent builds charge.dispute.created, .updated or .closed.
func DisputeEvent(eventType string, m Meta, d Dispute) ([]byte, error) {
	obj, err := load("dispute.json")
	if err != nil {
		return nil, err
	}
	orDefault(&d.DisputeID, "du_"+randID(24))
	orDefault(&d.Currency, "usd")
	orDefault(&d.Reason, "fraudulent")
	orDefault(&d.Status, "needs_response")
	obj["id"], obj["charge"], obj["payment_intent"] = d.DisputeID, d.ChargeID, d.PaymentIntentID
	obj["amount"], obj["currency"], obj["status"], obj["reason"] = d.Amount, d.Currency, d.Status, d.Reason
	obj["livemode"] = m.Livemode
	obj["created"] = created(m).Add(-time.Minute).Unix()
	return envelope(eventType, m, obj)
}

// PaymentIntent describes the payment intent of payment_intent.* events.
type PaymentIntent struct {
	ID       string // pi_…; generated when empty
	Amount   int64
	Currency string // usd when empty
	Status   string // succeeded, requires_payment_method, …; derived from the event type when empty
	ChargeID string // latest_charge
}

// PaymentIntentEvent builds payment_intent.succeeded or .payment_failed.
func PaymentIntentEvent(eventType string, m Meta, p PaymentIntent) ([]byte, error) {
	obj, err := load("payment_intent.json")
	if err != nil {
		return nil, err
	}
	orDefault(&p.ID, "pi_"+randID(24))
	orDefault(&p.Currency, "usd")
	received := p.Amount
	switch eventType {
	case "payment_intent.succeeded":
		orDefault(&p.Status, "succeeded")
	case "payment_intent.payment_failed":
		orDefault(&p.Status, "requires_payment_method")
		received = 0
		obj["last_payment_error"] = map[string]any{
			"code": "card_declined", "decline_code": "generic_decline", "type": "card_error",
			"message": "Your card was declined.",
		}
	default:
		return nil, fmt.Errorf("stripefixture: %q is not a payment_intent event", eventType)
	}
	obj["id"], obj["amount"], obj["amount_received"] = p.ID, p.Amount, received
	obj["currency"], obj["status"], obj["livemode"] = p.Currency, p.Status, m.Livemode
	obj["client_secret"] = p.ID + "_secret_" + randID(12)
	if p.ChargeID != "" {
		obj["latest_charge"] = p.ChargeID
	} else {
		obj["latest_charge"] = nil
	}
	obj["created"] = created(m).Add(-time.Minute).Unix()
	return envelope(eventType, m, obj)
}

// Sign returns a Stripe-Signature header value for payload signed with secret
// at t, exactly as Stripe computes it (t=…,v1=…).
func Sign(payload []byte, secret string, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: t,
	}).Header
}

// NewID returns prefix followed by n random base-62 characters, shaped like a
// Stripe id (NewID("evt_", 24)).
func NewID(prefix string, n int) string { return prefix + randID(n) }

// NewSecret returns a random webhook signing secret, whsec_….
func NewSecret() string { return "whsec_" + randID(32) }

func envelope(eventType string, m Meta, obj map[string]any) ([]byte, error) {
	ev, err := load("event.json")
	if err != nil {
		return nil, err
	}
	orDefault(&m.EventID, "evt_"+randID(24))
	orDefault(&m.APIVersion, APIVersion)
	ev["id"], ev["type"], ev["api_version"] = m.EventID, eventType, m.APIVersion
	ev["created"], ev["livemode"] = created(m).Unix(), m.Livemode
	ev["data"] = map[string]any{"object": obj}
	return json.Marshal(ev)
}

func load(name string) (map[string]any, error) {
	b, err := templates.ReadFile("templates/" + name)
	if err != nil {
		return nil, fmt.Errorf("stripefixture: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("stripefixture: template %s: %w", name, err)
	}
	return m, nil
}

func metadata(md map[string]string) map[string]any {
	out := make(map[string]any, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}

func created(m Meta) time.Time {
	if m.Created.IsZero() {
		return time.Now()
	}
	return m.Created
}

func orDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randID(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}
