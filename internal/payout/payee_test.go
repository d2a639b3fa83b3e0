package payout_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// applyUpdate applies u in a transaction of its own, as the route does in
// the event's.
func (e *env) applyUpdate(t *testing.T, u payout.AccountUpdate) payout.PayeeChange {
	t.Helper()
	var ch payout.PayeeChange
	err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		ch, err = payout.ApplyAccountUpdated(ctx, tx, u)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func (e *env) payeeRow(t *testing.T, id string) model.Payee {
	t.Helper()
	var p model.Payee
	if err := e.db.NewSelect().Model(&p).Where("kind = 'creator' AND id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

// account.updated events applied in any order leave the newest one's
// state: an older event changes nothing.
func TestAccountUpdatedOutOfOrder(t *testing.T) {
	e := newEnv(t)
	acct := e.payee(t, "alice")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	upd := func(at time.Time, enabled bool, due ...string) payout.AccountUpdate {
		return payout.AccountUpdate{AccountID: acct, ChargesEnabled: true, PayoutsEnabled: enabled, RequirementsDue: due, EventCreated: at}
	}
	if ch := e.applyUpdate(t, upd(t0.Add(2*time.Minute), false, "external_account")); ch.Outcome != payout.PayeeApplied {
		t.Fatalf("newest first: %+v", ch)
	}
	if ch := e.applyUpdate(t, upd(t0.Add(time.Minute), true)); ch.Outcome != payout.PayeeStale {
		t.Fatalf("older after newer: %+v", ch)
	}
	p := e.payeeRow(t, "alice")
	if p.PayoutsEnabled || string(p.RequirementsDue) != `["external_account"]` || !p.AccountEventCreated.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("the older event overwrote the newer: %+v (%s)", p, p.RequirementsDue)
	}
	// The same second again (a redelivery, or Stripe's second event id)
	// applies: the state is the same.
	if ch := e.applyUpdate(t, upd(t0.Add(2*time.Minute), false, "external_account")); ch.Outcome != payout.PayeeApplied {
		t.Fatalf("same created: %+v", ch)
	}
	if ch := e.applyUpdate(t, upd(t0.Add(3*time.Minute), true)); ch.Outcome != payout.PayeeApplied || !ch.Payee.PayoutsEnabled {
		t.Fatalf("newer: %+v", ch)
	}
	if n := e.outboxCount(t, payout.PayeeUpdatedSubject); n != 3 {
		t.Errorf("%d payees.updated events, want 3 (one per applied event)", n)
	}
}

// account.updated finds a payee whose account id is not stored yet (the
// event overtook onboarding's commit) by the account's metadata; an account
// without that metadata is not paystream's.
func TestAccountUpdatedAttachesByMetadata(t *testing.T) {
	e := newEnv(t)
	raw := `{"id":"acct_new","object":"account","charges_enabled":true,"payouts_enabled":true,
		"metadata":{"paystream_payee_kind":"creator","paystream_payee_id":"zed"},
		"requirements":{"currently_due":["b"],"past_due":["a","b"],"disabled_reason":"requirements.past_due"}}`
	var a stripe.Account
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatal(err)
	}
	ch := e.applyUpdate(t, payout.AccountUpdateOf(&a, time.Now()))
	if ch.Outcome != payout.PayeeApplied || deref(ch.Payee.StripeAccountID) != "acct_new" {
		t.Fatalf("%+v", ch)
	}
	p := e.payeeRow(t, "zed")
	if string(p.RequirementsDue) != `["a", "b"]` && string(p.RequirementsDue) != `["a","b"]` || deref(p.DisabledReason) != "requirements.past_due" {
		t.Fatalf("payee = %+v (%s)", p, p.RequirementsDue)
	}
	if ch := e.applyUpdate(t, payout.AccountUpdate{AccountID: "acct_foreign", EventCreated: time.Now()}); ch.Outcome != payout.PayeeUnknownAccount {
		t.Fatalf("foreign account: %+v", ch)
	}
	e.payee(t, "yan") // has acct_yan
	u := payout.AccountUpdate{AccountID: "acct_other", PayeeKind: "creator", PayeeID: "yan", EventCreated: time.Now()}
	if ch := e.applyUpdate(t, u); ch.Outcome != payout.PayeeConflict {
		t.Fatalf("metadata naming a payee with another account: %+v", ch)
	}
}

// A payee without payouts_enabled accrues but is never paid; enabling it
// (account.updated) pays what accrued.
func TestPayeeWithoutPayoutsEnabledAccrues(t *testing.T) {
	e := newEnv(t)
	acct := e.payee(t, "alice")
	e.applyUpdate(t, payout.AccountUpdate{AccountID: acct, PayoutsEnabled: false, EventCreated: time.Now().Add(-time.Hour)})
	r := e.runner(t, nil)
	for range 3 {
		e.earn(t, "alice", 400)
		if s := e.run(t, r); s.Created != 0 {
			t.Fatalf("paid without payouts_enabled: %+v", s)
		}
	}
	if got := e.balance(t, "alice", ledger.Available); got != 1200 || len(e.fake.Transfers()) != 0 {
		t.Fatalf("available %d, %d transfers", got, len(e.fake.Transfers()))
	}
	e.applyUpdate(t, payout.AccountUpdate{AccountID: acct, PayoutsEnabled: true, EventCreated: time.Now()})
	if s := e.run(t, r); s.Paid != 1 || s.PaidCents["usd"] != 1200 {
		t.Fatalf("after enabling: %+v", s)
	}
	e.mustVerify(t)
}

// A permanent refusal blocks the payee until an account.updated created
// after the block; an older one does not clear it.
func TestRefusalBlocksUntilTheAccountChanges(t *testing.T) {
	e := newEnv(t)
	acct := e.payee(t, "alice")
	e.earn(t, "alice", 500)
	e.fake.RefuseAccount(acct, "account_invalid")
	r := e.runner(t, nil)
	if s := e.run(t, r); s.Failed != 1 {
		t.Fatalf("%+v", s)
	}
	blockedAt := *e.payeeRow(t, "alice").PayoutsBlockedAt
	if ch := e.applyUpdate(t, payout.AccountUpdate{AccountID: acct, PayoutsEnabled: true, EventCreated: blockedAt.Add(-time.Minute)}); ch.Unblocked {
		t.Fatal("an event from before the block cleared it")
	}
	if s := e.run(t, r); s.Created != 0 {
		t.Fatalf("a blocked payee was paid: %+v", s)
	}
	e.fake.RefuseAccount(acct, "")
	if ch := e.applyUpdate(t, payout.AccountUpdate{AccountID: acct, PayoutsEnabled: true, EventCreated: blockedAt.Add(time.Second)}); !ch.Unblocked {
		t.Fatalf("a newer account.updated did not unblock: %+v", ch)
	}
	if s := e.run(t, r); s.Paid != 1 || s.PaidCents["usd"] != 500 {
		t.Fatalf("after the account changed: %+v", s)
	}
	if v := payoutsFailed(t, e, "account_invalid"); v != 1 {
		t.Errorf("paystream_payouts_failed_total{reason=account_invalid} = %v", v)
	}
	e.mustVerify(t)
}

// A deauthorized account blocks its payee: a payout created before it and
// not yet requested fails with code deauthorized at the next run, the money
// back in available; no new payout is made.
func TestDeauthorized(t *testing.T) {
	e := newEnv(t)
	acct := e.payee(t, "alice")
	e.earn(t, "alice", 500)
	// A run that made the payout and stopped before its first request.
	crashed := e.runner(t, nil, payout.WithFault(stopAt(payout.StepCreated)))
	if _, err := crashed.Run(context.Background(), payout.RunOptions{}); !errors.Is(err, errCrash) {
		t.Fatalf("crash run: %v", err)
	}
	err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		ch, err := payout.ApplyDeauthorized(ctx, tx, acct, time.Now())
		if err == nil && (ch.Outcome != payout.PayeeApplied || ch.Payee.PayoutsEnabled || deref(ch.Payee.PayoutsBlockedReason) != "deauthorized") {
			t.Errorf("deauthorized: %+v", ch)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := e.run(t, e.runner(t, nil))
	p := e.payoutOf(t, "alice")
	if s.Failed != 1 || p.Status != model.PayoutFailed || deref(p.FailureCode) != "deauthorized" || len(e.fake.Transfers()) != 0 {
		t.Fatalf("summary %+v payout %+v", s, p)
	}
	if got := e.balance(t, "alice", ledger.Available); got != 500 {
		t.Fatalf("available %d", got)
	}
	e.mustVerify(t)
}

// A payee whose payouts were disabled after a payout was made, before its
// first request, gets the payout canceled and the money back.
func TestIneligibleBeforeTheFirstRequestCancels(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 500)
	if _, err := e.runner(t, nil, payout.WithFault(stopAt(payout.StepCreated))).Run(context.Background(), payout.RunOptions{}); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	if _, err := e.db.NewRaw(`UPDATE payees SET payouts_enabled = false`).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.run(t, e.runner(t, nil))
	if p := e.payoutOf(t, "alice"); s.Canceled != 1 || p.Status != model.PayoutCanceled || e.balance(t, "alice", ledger.Available) != 500 {
		t.Fatalf("summary %+v payout %+v", s, p)
	}
	if n := e.outboxCount(t, "payouts.canceled"); n != 1 {
		t.Errorf("%d payouts.canceled events", n)
	}
	e.mustVerify(t)
}

// transfer.reversed credits each reversed cent back once, whatever the
// order and repetition of the events.
func TestTransferReversed(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 1000)
	e.run(t, e.runner(t, nil))
	p := e.payoutOf(t, "alice")
	apply := func(cum int64) payout.Reversal {
		t.Helper()
		var out payout.Reversal
		err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			out, err = payout.ApplyTransferReversed(ctx, tx, payout.TransferReversal{TransferID: *p.StripeTransferID,
				TransferGroup: p.TransferGroup, AmountReversed: cum, EventCreated: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, st := range []struct {
		cum       int64
		want      payout.ReversalOutcome
		available int64
	}{
		{300, payout.ReversalPosted, 300},
		{300, payout.ReversalAlreadyPosted, 300}, // redelivery
		{200, payout.ReversalAlreadyPosted, 300}, // an older event
		{1000, payout.ReversalPosted, 1000},
	} {
		if r := apply(st.cum); r.Outcome != st.want || e.balance(t, "alice", ledger.Available) != st.available {
			t.Fatalf("reversed %d: %+v, available %d", st.cum, r, e.balance(t, "alice", ledger.Available))
		}
	}
	if got := e.balance(t, "alice", ledger.PaidOut); got != 0 {
		t.Fatalf("paid_out %d", got)
	}
	e.mustVerify(t)
	// Not paystream's transfer.
	err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		r, err := payout.ApplyTransferReversed(ctx, tx, payout.TransferReversal{TransferID: "tr_other", TransferGroup: "order_1",
			AmountReversed: 5, EventCreated: time.Now()})
		if err == nil && r.Outcome != payout.ReversalNotOurs {
			t.Errorf("foreign transfer: %+v", r)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A reversal of a payout whose settlement has not committed yet (its run is
// between Stripe's answer and the commit) is ErrNotSettled: the route
// retries it.
func TestTransferReversedBeforeTheSettlement(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 1000)
	if _, err := e.runner(t, nil, payout.WithFault(stopAt(payout.StepAfterAnswer))).Run(context.Background(), payout.RunOptions{}); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	p := e.payoutOf(t, "alice")
	tr := e.fake.Transfers()[0]
	err := e.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := payout.ApplyTransferReversed(ctx, tx, payout.TransferReversal{TransferID: tr.ID, TransferGroup: p.TransferGroup,
			AmountReversed: 100, EventCreated: time.Now()})
		return err
	})
	if !errors.Is(err, payout.ErrNotSettled) {
		t.Fatalf("err = %v, want ErrNotSettled", err)
	}
}

// stopAt returns a fault that crashes every payout at step.
func stopAt(step payout.Step) payout.Fault {
	return func(_ context.Context, s payout.Step, _ uuid.UUID) error {
		if s == step {
			return errCrash
		}
		return nil
	}
}

func payoutsFailed(t *testing.T, e *env, reason string) float64 {
	t.Helper()
	return testenv.Metric(t, e.reg, "paystream_payouts_failed_total", map[string]string{"reason": reason})
}
