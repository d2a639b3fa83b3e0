package payout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// The store functions of the Connect webhooks. Each takes the event's
// database transaction (bun.IDB), writes its payees.updated or
// payouts.reversed event into the outbox there, and returns what happened,
// so the route counts it (Metrics.ObservePayeeChange) and records the
// event's outcome.

// Changes of a payees.updated event.
const (
	changeAccountUpdated = "account_updated"
	changeDeauthorized   = "deauthorized"
	changeBlocked        = "blocked"
)

// PayeeOutcome is what a Connect event did to a payee.
type PayeeOutcome string

// Outcomes of ApplyAccountUpdated and ApplyDeauthorized.
const (
	// PayeeApplied: the payee row now holds the event's state.
	PayeeApplied PayeeOutcome = payeeApplied
	// PayeeStale: an event created before the last one applied; nothing
	// changed (Stripe does not order events).
	PayeeStale PayeeOutcome = payeeStale
	// PayeeUnknownAccount: no payee has the account, and its metadata names
	// none; nothing changed (an account paystream did not create).
	PayeeUnknownAccount PayeeOutcome = payeeUnknownAccount
	// PayeeConflict: the metadata names a payee that has another account;
	// nothing changed (logged by the route; an operator decides).
	PayeeConflict PayeeOutcome = payeeConflict
)

// AccountUpdate is what an account.updated event says of a connected
// account.
type AccountUpdate struct {
	AccountID       string
	ChargesEnabled  bool
	PayoutsEnabled  bool
	RequirementsDue []string // requirements.currently_due and past_due
	DisabledReason  string   // requirements.disabled_reason
	// PayeeKind and PayeeID are the account's metadata, which onboarding
	// writes: they attach the account to its payee when the event comes
	// before onboarding committed the account's id.
	PayeeKind, PayeeID string
	EventCreated       time.Time // the event's `created`
}

// AccountUpdateOf reads an account.updated event's data.object (a Stripe
// account) and the event's created time.
func AccountUpdateOf(a *stripe.Account, eventCreated time.Time) AccountUpdate {
	u := AccountUpdate{AccountID: a.ID, ChargesEnabled: a.ChargesEnabled, PayoutsEnabled: a.PayoutsEnabled,
		PayeeKind: a.Metadata[MetadataPayeeKind], PayeeID: a.Metadata[MetadataPayeeID], EventCreated: eventCreated}
	if r := a.Requirements; r != nil {
		u.DisabledReason = string(r.DisabledReason)
		u.RequirementsDue = append(slices.Clone(r.CurrentlyDue), r.PastDue...)
	}
	return u
}

// PayeeChange is what ApplyAccountUpdated or ApplyDeauthorized did.
type PayeeChange struct {
	Outcome   PayeeOutcome
	Payee     model.Payee // the row after the change (zero for an unknown account)
	Unblocked bool        // the change cleared a block: the payee is paid again
}

// ApplyAccountUpdated applies an account.updated event to its payee in the
// event's transaction db: charges_enabled, payouts_enabled,
// requirements_due and disabled_reason, unless an event created later was
// applied already (an event created at the same second is applied: a
// redelivery is the same state). An event created after the payee was
// blocked clears the block: its account changed, so the next run tries it
// again. The payee is found by its account, else by the account's
// metadata (the event overtook onboarding's commit).
func ApplyAccountUpdated(ctx context.Context, db bun.IDB, u AccountUpdate) (PayeeChange, error) {
	if u.AccountID == "" || u.EventCreated.IsZero() {
		return PayeeChange{}, errors.New("payout: account.updated without an account id or a created time")
	}
	p, outcome, err := lockPayeeOfAccount(ctx, db, u.AccountID, u.PayeeKind, u.PayeeID)
	if err != nil || outcome != "" {
		return PayeeChange{Outcome: outcome}, err
	}
	if p.AccountEventCreated != nil && u.EventCreated.Before(*p.AccountEventCreated) {
		return PayeeChange{Outcome: PayeeStale, Payee: *p}, nil
	}
	due := u.RequirementsDue
	if due == nil {
		due = []string{}
	}
	slices.Sort(due)
	due = slices.Compact(due)
	reqs, err := json.Marshal(due)
	if err != nil {
		return PayeeChange{}, err
	}
	created := u.EventCreated.UTC()
	p.StripeAccountID = &u.AccountID
	p.ChargesEnabled, p.PayoutsEnabled, p.RequirementsDue = u.ChargesEnabled, u.PayoutsEnabled, model.JSON(reqs)
	p.DisabledReason = nil
	if u.DisabledReason != "" {
		p.DisabledReason = &u.DisabledReason
	}
	p.AccountEventCreated = &created
	unblocked := p.PayoutsBlockedAt != nil && created.After(*p.PayoutsBlockedAt)
	if unblocked {
		p.PayoutsBlockedAt, p.PayoutsBlockedReason = nil, nil
	}
	return savePayee(ctx, db, p, changeAccountUpdated, unblocked)
}

// ApplyDeauthorized applies account.application.deauthorized: the platform
// lost access to the account, so the payee is blocked with reason
// deauthorized and its payouts_enabled cleared; an event older than the
// last applied one changes nothing. Open payouts no request was sent for
// fail at the next run; those under way finish by Stripe's answer.
func ApplyDeauthorized(ctx context.Context, db bun.IDB, accountID string, eventCreated time.Time) (PayeeChange, error) {
	if accountID == "" || eventCreated.IsZero() {
		return PayeeChange{}, errors.New("payout: deauthorization without an account id or a created time")
	}
	p, outcome, err := lockPayeeOfAccount(ctx, db, accountID, "", "")
	if err != nil || outcome != "" {
		return PayeeChange{Outcome: outcome}, err
	}
	if p.AccountEventCreated != nil && eventCreated.Before(*p.AccountEventCreated) {
		return PayeeChange{Outcome: PayeeStale, Payee: *p}, nil
	}
	created, reason := eventCreated.UTC(), CodeDeauthorized
	p.ChargesEnabled, p.PayoutsEnabled, p.AccountEventCreated = false, false, &created
	p.PayoutsBlockedAt, p.PayoutsBlockedReason = &created, &reason
	return savePayee(ctx, db, p, changeDeauthorized, false)
}

// lockPayeeOfAccount returns the payee row of accountID, locked, or the
// outcome that says why there is none to change. A payee found by the
// metadata without an account gets this one; a new payee row is made for
// metadata naming a payee paystream has no row for.
func lockPayeeOfAccount(ctx context.Context, db bun.IDB, accountID, kind, id string) (*model.Payee, PayeeOutcome, error) {
	var p model.Payee
	err := db.NewSelect().Model(&p).Where("stripe_account_id = ?", accountID).For("UPDATE").Scan(ctx)
	if err == nil {
		return &p, "", nil
	}
	if !isNoRows(err) {
		return nil, "", fmt.Errorf("payout: read payee of %s: %w", accountID, err)
	}
	ref, perr := ParsePayeeRef(kind + ":" + id)
	if perr != nil {
		return nil, PayeeUnknownAccount, nil
	}
	if _, err := db.NewRaw(`INSERT INTO payees (kind, id) VALUES (?, ?) ON CONFLICT DO NOTHING`, ref.Kind, ref.ID).Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("payout: insert payee %s: %w", ref, err)
	}
	if err := db.NewSelect().Model(&p).Where("kind = ? AND id = ?", ref.Kind, ref.ID).For("UPDATE").Scan(ctx); err != nil {
		return nil, "", fmt.Errorf("payout: read payee %s: %w", ref, err)
	}
	if p.StripeAccountID != nil && *p.StripeAccountID != accountID {
		return nil, PayeeConflict, nil
	}
	return &p, "", nil
}

// savePayee writes p's account state and its payees.updated event.
func savePayee(ctx context.Context, db bun.IDB, p *model.Payee, change string, unblocked bool) (PayeeChange, error) {
	now := time.Now().UTC()
	p.UpdatedAt = now
	_, err := db.NewUpdate().Model(p).Column("stripe_account_id", "charges_enabled", "payouts_enabled", "requirements_due",
		"disabled_reason", "account_event_created", "payouts_blocked_at", "payouts_blocked_reason", "updated_at").
		WherePK().Exec(ctx)
	if err != nil {
		return PayeeChange{}, fmt.Errorf("payout: update payee %s:%s: %w", p.Kind, p.ID, err)
	}
	if err := addPayeeEvent(ctx, db, p, change, now); err != nil {
		return PayeeChange{}, err
	}
	return PayeeChange{Outcome: PayeeApplied, Payee: *p, Unblocked: unblocked}, nil
}

// ObservePayeeChange counts what a Connect webhook's store function did in
// paystream_payouts_payee_updates_total{outcome}.
func (m *Metrics) ObservePayeeChange(o PayeeOutcome) { m.payeeUpdate(string(o)) }
