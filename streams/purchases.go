package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// CloudEvents 1.0 structured-mode constants of the PURCHASES events.
const (
	CloudEventsSpecVersion = "1.0"
	CloudEventsContentType = "application/cloudevents+json" // NATS Content-Type header of every PURCHASES message
	PurchaseEventSource    = "paystream/processor"
	PurchaseDataType       = "application/json" // datacontenttype
	HeaderContentType      = "Content-Type"
	HeaderCEType           = "Ce-Type" // copy of the envelope type, to filter without decoding
	HeaderCEID             = "Ce-Id"   // copy of the envelope id
)

// Purchase event kinds: the last token of the subject (purchases.<kind>) and
// the middle of the CloudEvents type (com.paystream.purchase.<kind>.v1).
const (
	PurchasePending     = "pending"      // checkout completed, payment not settled yet
	PurchaseCompleted   = "completed"    // paid: access granted, split fixed
	PurchaseFailed      = "failed"       // async payment failed or session expired
	PurchaseRefunded    = "refunded"     // money returned, partially or fully (Data.Refund)
	PurchaseDisputed    = "disputed"     // a chargeback was opened; access kept meanwhile
	PurchaseDisputeWon  = "dispute_won"  // chargeback closed in our favour
	PurchaseDisputeLost = "dispute_lost" // chargeback lost: access revoked
)

// PurchaseEventVersion is the version suffix of every current type. A change
// that breaks consumers (a removed or retyped field) gets a new version and is
// published beside the old one for a deprecation period; added fields do not.
const PurchaseEventVersion = "v1"

// PurchaseEventType returns the CloudEvents type of kind,
// com.paystream.purchase.<kind>.v1.
func PurchaseEventType(kind string) string {
	return "com.paystream.purchase." + kind + "." + PurchaseEventVersion
}

// CloudEvent is a CloudEvents 1.0 envelope in structured JSON mode with
// data of type D: the one definition of the PURCHASES wire format. The
// outbox writes it (D = any, the writer's data) and consumers read it as
// PurchaseEvent.
type CloudEvent[D any] struct {
	SpecVersion     string    `json:"specversion"`     // "1.0"
	ID              string    `json:"id"`              // outbox row id (uuid)
	Source          string    `json:"source"`          // "paystream/processor"
	Type            string    `json:"type"`            // com.paystream.purchase.<kind>.v1
	Subject         string    `json:"subject"`         // purchase id
	Time            time.Time `json:"time"`            // when the change was committed
	DataContentType string    `json:"datacontenttype"` // "application/json"
	Data            D         `json:"data"`
}

// PurchaseEvent is one message of the PURCHASES stream. ID is unique per
// event (and is the Nats-Msg-Id), so consumers deduplicate on it.
type PurchaseEvent = CloudEvent[PurchaseData]

// PurchaseData is the purchase as it stands after the change the event
// reports. Amounts are integer minor units of Currency.
type PurchaseData struct {
	PurchaseID      uuid.UUID        `json:"purchase_id"`
	CustomerID      string           `json:"customer_id"`
	ContentID       uuid.UUID        `json:"content_id"`
	OrganizationID  uuid.UUID        `json:"organization_id"`
	CreatorID       string           `json:"creator_id"`
	AmountPaidCents int64            `json:"amount_paid_cents"`
	Currency        string           `json:"currency"`
	Split           PurchaseSplit    `json:"split"`
	Status          string           `json:"status"`          // pending, completed, failed, partially_refunded, refunded, dispute_lost
	PreviousStatus  string           `json:"previous_status"` // "" when the purchase was created by this change
	Access          bool             `json:"access"`          // whether this purchase grants access after the change
	Stripe          PurchaseStripe   `json:"stripe"`
	PurchasedAt     *time.Time       `json:"purchased_at,omitempty"`
	FailedAt        *time.Time       `json:"failed_at,omitempty"`
	FailureReason   string           `json:"failure_reason,omitempty"`
	Refund          *PurchaseRefund  `json:"refund,omitempty"`
	Dispute         *PurchaseDispute `json:"dispute,omitempty"`
	Livemode        bool             `json:"livemode"`
}

// PurchaseSplit is the revenue split fixed when the purchase completed (a
// provisional one while pending). Agreement ids are null when a default applied.
type PurchaseSplit struct {
	PlatformFeeCents      int64      `json:"platform_fee_cents"`
	OrganizationFeeCents  int64      `json:"organization_fee_cents"`
	CreatorPayoutCents    int64      `json:"creator_payout_cents"`
	PlatformFeeBps        int        `json:"platform_fee_bps"`
	OrganizationFeeBps    int        `json:"organization_fee_bps"`
	PlatformAgreementID   *uuid.UUID `json:"platform_agreement_id"`
	PlatformFeeConfigID   *uuid.UUID `json:"platform_fee_config_id"`
	CreatorOrgAgreementID *uuid.UUID `json:"creator_org_agreement_id"`
}

// PurchaseStripe holds the Stripe ids of the purchase and of the event that
// caused this change.
type PurchaseStripe struct {
	CheckoutSessionID string `json:"checkout_session_id"`
	PaymentIntentID   string `json:"payment_intent_id,omitempty"`
	ChargeID          string `json:"charge_id,omitempty"`
	CustomerID        string `json:"customer_id,omitempty"`
	EventID           string `json:"event_id"`
}

// PurchaseRefund is the refund state: AmountCents is the total refunded so
// far; DeltaCents what this event added.
type PurchaseRefund struct {
	AmountCents    int64      `json:"amount_cents"`
	DeltaCents     int64      `json:"delta_cents"`
	Full           bool       `json:"full"`
	RefundedAt     *time.Time `json:"refunded_at,omitempty"` // set when Full
	Reason         string     `json:"reason,omitempty"`
	StripeRefundID string     `json:"stripe_refund_id,omitempty"`
}

// PurchaseDispute is the chargeback state.
type PurchaseDispute struct {
	Status          string     `json:"status"` // open, won, lost
	StripeDisputeID string     `json:"stripe_dispute_id,omitempty"`
	DisputedAt      *time.Time `json:"disputed_at,omitempty"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
}

// PurchaseHandler handles one purchase event. Returning nil acks it; an error
// naks it with a growing delay, so it is delivered again. Handlers must be
// idempotent on PurchaseEvent.ID: delivery is at least once.
type PurchaseHandler func(ctx context.Context, ev PurchaseEvent) error

// PurchaseConsumerConfig returns the durable pull consumer SubscribePurchases
// creates: every purchase event from the start of the stream, explicit acks,
// and a delivery limit after which the broker stops redelivering (the message
// stays in PURCHASES; a max-deliveries advisory is published).
func PurchaseConsumerConfig(durable string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "purchase events consumer " + durable,
		FilterSubject: PurchasesSubjectPrefix + ">",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    50,
		MaxAckPending: 256,
	}
}

// SubscribeOption adjusts SubscribePurchases.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	log      *slog.Logger
	maxDelay time.Duration
	config   func(*jetstream.ConsumerConfig)
}

// WithLogger logs undecodable messages and handler errors to log.
func WithLogger(log *slog.Logger) SubscribeOption {
	return func(o *subscribeOptions) { o.log = log }
}

// WithMaxRetryDelay caps the nak delay (default 1m); the delay doubles from
// one second with each delivery.
func WithMaxRetryDelay(d time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.maxDelay = d }
}

// WithConsumerConfig edits the consumer configuration before it is applied
// (e.g. FilterSubject purchases.completed, DeliverNewPolicy).
func WithConsumerConfig(edit func(*jetstream.ConsumerConfig)) SubscribeOption {
	return func(o *subscribeOptions) { o.config = edit }
}

// SubscribePurchases creates or updates the durable pull consumer durable on
// PURCHASES and calls handler for each message until the returned
// ConsumeContext is stopped or drained (Drain, then wait on Closed, for a
// graceful stop). Each consuming application uses its own durable name; all
// instances of one application share it and split the messages.
//
// A message that does not decode as a PurchaseEvent can never succeed: it is
// terminated (TermWithReason) and logged instead of being redelivered.
func SubscribePurchases(ctx context.Context, js jetstream.JetStream, durable string, handler PurchaseHandler, opts ...SubscribeOption) (jetstream.ConsumeContext, error) {
	if durable == "" {
		return nil, errors.New("subscribe purchases: durable consumer name is empty")
	}
	if handler == nil {
		return nil, errors.New("subscribe purchases: handler is nil")
	}
	o := subscribeOptions{log: slog.New(slog.DiscardHandler), maxDelay: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	cc := PurchaseConsumerConfig(durable)
	if o.config != nil {
		o.config(&cc)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, PurchasesStream, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", durable, PurchasesStream, err)
	}
	log := o.log.With("consumer", durable)
	cctx, err := cons.Consume(func(msg jetstream.Msg) {
		handlePurchaseMsg(ctx, msg, handler, o.maxDelay, log)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Warn("purchase consumer error", "error", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("consume %s on %s: %w", durable, PurchasesStream, err)
	}
	return cctx, nil
}

func handlePurchaseMsg(ctx context.Context, msg jetstream.Msg, handler PurchaseHandler, maxDelay time.Duration, log *slog.Logger) {
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	log = log.With("subject", msg.Subject(), "num_delivered", delivered)
	var ev PurchaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.SpecVersion != CloudEventsSpecVersion || ev.ID == "" {
		log.Error("undecodable purchase event: terminated", "error", err, "specversion", ev.SpecVersion)
		if err := msg.TermWithReason("undecodable purchase event"); err != nil {
			log.Warn("term purchase event", "error", err)
		}
		return
	}
	log = log.With("event_id", ev.ID, "type", ev.Type, "purchase_id", ev.Subject)
	if err := handler(ctx, ev); err != nil {
		delay := RetryDelay(delivered, maxDelay)
		log.Warn("purchase event handler failed; will retry", "error", err, "retry_in", delay)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak purchase event", "error", err)
		}
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The handler's effect happened; the message will come again and
		// the handler's idempotency on ev.ID absorbs it.
		log.Warn("ack purchase event", "error", err)
	}
}

// RetryDelay is the nak delay after the n-th delivery failed: 1s, 2s, 4s, …
// capped at max.
func RetryDelay(n uint64, max time.Duration) time.Duration {
	d := time.Second
	for i := uint64(1); i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
