package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/streams"
)

// Stripe event types of the payout family. The two account events come
// from the Connect endpoint (they happen on a connected account and carry
// it in the event's top-level account); transfer.reversed is the
// platform's own (an operator reversed one of its transfers).
const (
	TypeAccountUpdated      = "account.updated"
	TypeAccountDeauthorized = "account.application.deauthorized"
	TypeTransferReversed    = "transfer.reversed"
)

// Stripe object names of the routes' data.object.
const (
	objectAccount     = "account"
	objectApplication = "application"
	objectTransfer    = "transfer"
)

// Reasons of the family's faults (dead-letter and retry reasons).
const (
	reasonPayoutNotSettled   = "payout_not_settled"  // retried: the payout's own settlement has not committed yet
	reasonUnrecordedTransfer = "unrecorded_transfer" // dead-lettered: a transfer of a payout's group the payout does not record
)

// family is the payout family of the event route table: its routes apply
// the Connect webhooks through the store functions (payee.go, reversal.go)
// in the event's transaction, on either processor path (per event, or in
// its savepoint of a batch).
type family struct {
	m   *Metrics
	log *slog.Logger
}

// NewFamily returns the payout family for eventtx.New, beside the other
// families of the processor. m is the processor's one Metrics (registering
// a second panics); the routes count what they did in it once their
// event's transaction committed.
func NewFamily(m *Metrics, log *slog.Logger) (eventtx.Family, error) {
	if m == nil || log == nil {
		return eventtx.Family{}, errors.New("payout family: metrics and logger are required")
	}
	f := &family{m: m, log: log}
	return eventtx.Family{Name: "payout", Routes: f.routes()}, nil
}

// routes is the family's part of the route table.
func (f *family) routes() map[string]eventtx.Route {
	return map[string]eventtx.Route{
		TypeAccountUpdated:      eventtx.On(objectAccount, f.accountUpdated),
		TypeAccountDeauthorized: eventtx.On(objectApplication, f.deauthorized),
		TypeTransferReversed:    eventtx.On(objectTransfer, f.transferReversed),
	}
}

// HandledTypes lists, sorted, the Stripe event types the payout family
// applies.
func HandledTypes() []string { return eventtx.TypesOf((&family{}).routes()) }

// PlatformTypes lists the family's types that happen on the platform's own
// account, which the platform's Events API lists and reconcile can recover:
// transfer.reversed. The account events happen on connected accounts; the
// platform's list does not have them (each account's state is re-read by
// its next account.updated, and payouts reconcile matches transfers).
func PlatformTypes() []string { return []string{TypeTransferReversed} }

// ConnectTypes lists, sorted, the family's types that happen on connected
// accounts and reach paystream only through the Connect endpoint.
func ConnectTypes() []string { return []string{TypeAccountDeauthorized, TypeAccountUpdated} }

// accountUpdated applies account.updated to the account's payee. An event
// older than the last one applied is a duplicate (a newer state is there
// already); an account no payee has, and whose metadata names none, is
// recorded and changes nothing (a connected account paystream did not
// create).
func (f *family) accountUpdated(ctx context.Context, tx bun.Tx, ev eventtx.Event, a *stripe.Account, rec *eventtx.Record) error {
	if err := checkAccount(ev, a); err != nil {
		return err
	}
	ch, err := ApplyAccountUpdated(ctx, tx, AccountUpdateOf(a, ev.At))
	if err != nil {
		return err
	}
	f.recordPayee(ev, a.ID, ch, rec)
	return nil
}

// deauthorized applies account.application.deauthorized: the event's
// account (the top-level account; data.object is the application) is
// blocked. The platform's own deauthorization from another platform's
// application carries no account and concerns no payee.
func (f *family) deauthorized(ctx context.Context, tx bun.Tx, ev eventtx.Event, _ *stripe.Application, rec *eventtx.Record) error {
	if ev.Account == "" {
		rec.Recorded("no connected account in the event: the platform's own deauthorization, no payee")
		return nil
	}
	if !validAccountID(ev.Account) {
		return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "account of %s is %q, not a connected account id", ev.ID, ev.Account)
	}
	ch, err := ApplyDeauthorized(ctx, tx, ev.Account, ev.At)
	if err != nil {
		return err
	}
	f.recordPayee(ev, ev.Account, ch, rec)
	return nil
}

// recordPayee records what a store function did to a payee and counts it
// once the event committed.
func (f *family) recordPayee(ev eventtx.Event, account string, ch PayeeChange, rec *eventtx.Record) {
	switch ch.Outcome {
	case PayeeApplied:
		rec.Applied()
		if ch.Unblocked {
			f.log.Info("payout: payee unblocked by an account update", "stripe_event_id", ev.ID,
				"payee", ch.Payee.Kind+":"+ch.Payee.ID, "account", account)
		}
	case PayeeStale:
		rec.Duplicate("an account event created later was applied already")
	case PayeeUnknownAccount:
		rec.Recorded("account " + account + " is no payee's")
	case PayeeConflict:
		// The account's metadata names a payee that has another account:
		// two accounts for one payee (an onboarding retried after Stripe
		// forgot its key). An operator picks one; nothing changes.
		f.log.Warn("payout: an account names a payee that has another account; nothing changed",
			"stripe_event_id", ev.ID, "account", account)
		rec.Recorded("account " + account + " names a payee with another account")
	}
	outcome := ch.Outcome
	rec.AfterCommit(func() { f.m.ObservePayeeChange(outcome) })
}

// transferReversed credits a reversed payout transfer back to its payee's
// available balance. A reversal of a payout whose own settlement has not
// committed yet is retried; one of a transfer the payout does not record
// (a duplicate transfer) is dead-lettered for an operator.
func (f *family) transferReversed(ctx context.Context, tx bun.Tx, ev eventtx.Event, t *stripe.Transfer, rec *eventtx.Record) error {
	if !stripeevent.ValidObjectID(t.ID) || !strings.HasPrefix(t.ID, "tr_") || (t.Object != "" && t.Object != objectTransfer) {
		return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "data.object of %s is %q %q, not a transfer", ev.ID, t.Object, t.ID)
	}
	if t.AmountReversed < 0 {
		return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "transfer %s of %s has a negative amount_reversed", t.ID, ev.ID)
	}
	r, err := reverseTransfer(ctx, tx, TransferReversalOf(t, ev.At), func(lt ledger.Transaction) error {
		rec.Post(lt)
		return nil
	})
	switch {
	case errors.Is(err, ErrNotSettled):
		return fault.Wrap(err, fault.Pending, reasonPayoutNotSettled, "transfer "+t.ID+" reversed before its payout settled; retry")
	case errors.Is(err, ErrUnrecordedTransfer):
		return fault.Wrap(err, fault.Invalid, reasonUnrecordedTransfer,
			"transfer "+t.ID+" of a payout's group is not the payout's; see docs/payouts.md (reconcile reports it)")
	case err != nil:
		return err
	}
	switch r.Outcome {
	case ReversalPosted:
		rec.Applied()
	case ReversalAlreadyPosted:
		rec.Duplicate("the reversed amount was credited already")
	case ReversalNotOurs:
		rec.Recorded("transfer " + t.ID + " is no payout's")
	}
	rec.AfterCommit(func() { f.m.ObserveReversal(r.Outcome) })
	return nil
}

// maxAccountText bounds the account's text fields paystream stores
// (requirement names, disabled_reason, the payee metadata).
const maxAccountText = 1000

// checkAccount refuses an account.updated whose account is not a
// connected account id, differs from the event's top-level account, or
// carries text paystream would store that is not text.
func checkAccount(ev eventtx.Event, a *stripe.Account) error {
	invalid := func(format string, args ...any) error {
		return fault.New(fault.Invalid, streams.ReasonInvalidPayload, "account.updated %s: "+format, append([]any{ev.ID}, args...)...)
	}
	if !validAccountID(a.ID) || (a.Object != "" && a.Object != objectAccount) {
		return invalid("data.object is %q %q, not a connected account", a.Object, a.ID)
	}
	if ev.Account != "" && ev.Account != a.ID {
		return invalid("the event's account %q is not its data.object %q", ev.Account, a.ID)
	}
	type field struct{ name, value string }
	fields := []field{{"metadata " + MetadataPayeeKind, a.Metadata[MetadataPayeeKind]},
		{"metadata " + MetadataPayeeID, a.Metadata[MetadataPayeeID]}}
	if r := a.Requirements; r != nil {
		fields = append(fields, field{"requirements.disabled_reason", string(r.DisabledReason)})
		for i, due := range append(slices.Clone(r.CurrentlyDue), r.PastDue...) {
			fields = append(fields, field{fmt.Sprintf("requirement #%d due", i+1), due})
		}
	}
	for _, f := range fields {
		if why := text.Problem(f.value, maxAccountText); why != "" {
			return invalid("%s %s", f.name, why)
		}
	}
	return nil
}

// validAccountID reports whether id is shaped like a connected account id.
func validAccountID(id string) bool {
	return strings.HasPrefix(id, "acct_") && stripeevent.ValidObjectID(id)
}
