package payout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/model"
)

// Each answer Stripe can give a transfer request leads where DESIGN.md's
// key rules say, and however many runs it takes, one transfer is made.
func TestKeyRules(t *testing.T) {
	const amount = 400
	tests := []struct {
		name  string
		fault stripefake.Fault
		// after the first run
		wantStatus   string
		wantAttempts int
		wantError    string
		spent        bool // the next key waits for the backoff
		// the second run (after the backoff when spent)
		wantAdopted bool
		wantPosts   int // transfer create requests over both runs
	}{
		{"rate limited: same key", stripefake.RateLimit, model.PayoutInTransit, 1, "rate_limit", false, false, 2},
		{"hang: same key", stripefake.Hang, model.PayoutInTransit, 1, "no_answer", false, false, 2},
		{"created, connection dropped: same key replays", stripefake.CreateThenDrop, model.PayoutInTransit, 1, "no_answer", false, false, 2},
		{"500: key spent", stripefake.Fail500, model.PayoutInTransit, 2, "api_error", true, false, 2},
		{"500 after creating: key spent, the list adopts", stripefake.Created500, model.PayoutInTransit, 2, "api_error", true, true, 1},
		{"balance_insufficient: key spent", stripefake.BalanceInsufficient, model.PayoutInTransit, 2, "balance_insufficient", true, false, 2},
		{"account_invalid: failed", stripefake.AccountInvalid, model.PayoutFailed, 1, "account_invalid", false, false, 1},
		{"transfers_not_allowed: failed", stripefake.TransfersNotAllowed, model.PayoutFailed, 1, "transfers_not_allowed", false, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.payee(t, "alice")
			e.earn(t, "alice", amount)
			stripe := e.newStripe(t, 0, 300*time.Millisecond)
			r := e.runner(t, stripe)
			e.fake.FailNext(tt.fault)
			if _, err := r.Run(context.Background(), payout.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			p := e.payoutOf(t, "alice")
			if p.Status != tt.wantStatus || p.Attempts != tt.wantAttempts || deref(p.LastError) != tt.wantError {
				t.Fatalf("after the first run: status %s attempts %d last_error %q", p.Status, p.Attempts, deref(p.LastError))
			}
			if tt.wantStatus == model.PayoutFailed {
				if deref(p.FailureCode) != tt.wantError || e.balance(t, "alice", ledger.Available) != amount {
					t.Fatalf("failed payout %+v: available %d", p, e.balance(t, "alice", ledger.Available))
				}
				var payee model.Payee
				if err := e.db.NewSelect().Model(&payee).Where("id = 'alice'").Scan(context.Background()); err != nil {
					t.Fatal(err)
				}
				if deref(payee.PayoutsBlockedReason) != tt.wantError {
					t.Fatalf("payee not blocked: %+v", payee)
				}
				if s := e.run(t, r); s.Created != 0 || len(e.fake.Transfers()) != 0 {
					t.Fatalf("a blocked payee was paid: %+v", s)
				}
				e.mustVerify(t)
				return
			}
			if tt.spent {
				if p.NextAttemptAt == nil || !p.NextAttemptAt.After(e.clock.Now()) {
					t.Fatalf("spent key without a backoff: %+v", p)
				}
				// Before the backoff ends, nothing is sent.
				before := e.fake.Requests()["POST /v1/transfers"]
				e.run(t, r)
				if e.fake.Requests()["POST /v1/transfers"] != before {
					t.Fatal("a new key was tried before the backoff ended")
				}
				e.clock.Advance(2 * time.Minute)
			}
			s := e.run(t, r)
			p = e.payoutOf(t, "alice")
			if p.Status != model.PayoutPaid || s.Paid != 1 || (s.Adopted == 1) != tt.wantAdopted {
				t.Fatalf("after the second run: %+v, payout %+v", s, p)
			}
			if tt.spent && e.fake.Requests()["GET /v1/transfers"] == 0 {
				t.Error("a new key was used without listing the transfer group first")
			}
			if n := e.fake.Requests()["POST /v1/transfers"]; n != tt.wantPosts {
				t.Errorf("%d create requests, want %d", n, tt.wantPosts)
			}
			if n := e.fake.TransfersInGroup(p.TransferGroup); n != 1 {
				t.Fatalf("%d transfers in the payout's group", n)
			}
			if e.balance(t, "alice", ledger.PaidOut) != amount || e.balance(t, "alice", ledger.InTransit) != 0 {
				t.Fatal("ledger not settled")
			}
			e.mustVerify(t)
		})
	}
}

// A crash between Stripe's answer and the commit sends the same key again:
// Stripe replays the transfer, and no second one is made.
func TestCrashAfterAnswerReplaysTheKey(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 500)
	crash := errors.New("crash")
	r := e.runner(t, nil, payout.WithFault(func(_ context.Context, s payout.Step, _ uuid.UUID) error {
		if s == payout.StepAfterAnswer {
			return crash
		}
		return nil
	}))
	if _, err := r.Run(context.Background(), payout.RunOptions{}); !errors.Is(err, err) || err == nil {
		t.Fatal("the crashed run reported no error")
	}
	p := e.payoutOf(t, "alice")
	if p.Status != model.PayoutInTransit || p.Attempts != 1 || e.fake.TransfersInGroup(p.TransferGroup) != 1 {
		t.Fatalf("after the crash: %+v, %d transfers", p, e.fake.TransfersInGroup(p.TransferGroup))
	}
	e.run(t, e.runner(t, nil))
	p = e.payoutOf(t, "alice")
	if p.Status != model.PayoutPaid || e.fake.TransfersInGroup(p.TransferGroup) != 1 || e.fake.Requests()["POST /v1/transfers"] != 2 {
		t.Fatalf("after the restart: %+v, transfers %v", p, e.fake.Transfers())
	}
	e.mustVerify(t)
}

// An attempt more than 23 hours after the first lists the transfer group
// before creating: Stripe has forgotten the key after 24 hours, and the
// same key would make a second transfer of one whose answer was lost. The
// control case, 22 hours on, replays the key.
func TestAttemptAfter23HoursListsFirst(t *testing.T) {
	for _, tt := range []struct {
		name      string
		after     time.Duration
		wantLists bool
	}{
		{"22h: the key replays", 22 * time.Hour, false},
		{"25h: the key expired, the list adopts", 25 * time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.payee(t, "alice")
			e.earn(t, "alice", 500)
			r := e.runner(t, nil)
			e.fake.FailNext(stripefake.CreateThenDrop)
			e.run(t, r)
			p := e.payoutOf(t, "alice")
			if p.Status != model.PayoutInTransit || e.fake.TransfersInGroup(p.TransferGroup) != 1 {
				t.Fatalf("after the dropped answer: %+v", p)
			}
			e.clock.Advance(tt.after)
			e.fake.Advance(tt.after)
			lists := e.fake.Requests()["GET /v1/transfers"]
			s := e.run(t, r)
			p = e.payoutOf(t, "alice")
			if p.Status != model.PayoutPaid || (e.fake.Requests()["GET /v1/transfers"] > lists) != tt.wantLists || (s.Adopted == 1) != tt.wantLists {
				t.Fatalf("status %s, lists %d → %d, summary %+v", p.Status, lists, e.fake.Requests()["GET /v1/transfers"], s)
			}
			if n := e.fake.TransfersInGroup(p.TransferGroup); n != 1 {
				t.Fatalf("%d transfers in the payout's group", n)
			}
			e.mustVerify(t)
		})
	}
}

// stripe-go's own retry (STRIPE_MAX_NETWORK_RETRIES) sends the same key
// after a dropped connection, so a run settles in one go.
func TestStripeGoRetryUsesTheSameKey(t *testing.T) {
	e := newEnv(t)
	e.payee(t, "alice")
	e.earn(t, "alice", 500)
	e.fake.FailNext(stripefake.CreateThenDrop)
	s := e.run(t, e.runner(t, e.newStripe(t, 2, 2*time.Second)))
	p := e.payoutOf(t, "alice")
	if s.Paid != 1 || p.Status != model.PayoutPaid || e.fake.TransfersInGroup(p.TransferGroup) != 1 {
		t.Fatalf("summary %+v payout %+v", s, p)
	}
}

// A key reused with other parameters is refused by Stripe (the fake): the
// engine never does it, because every parameter is a function of the row.
func TestFakeRefusesAKeyWithOtherParameters(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acct_x")
	req := payout.TransferRequest{Amount: 100, Currency: "usd", Destination: "acct_x", TransferGroup: "g"}
	if _, err := e.stripe.CreateTransfer(context.Background(), req, "k1"); err != nil {
		t.Fatal(err)
	}
	req.Amount = 101
	_, err := e.stripe.CreateTransfer(context.Background(), req, "k1")
	if err == nil || len(e.fake.Transfers()) != 1 {
		t.Fatalf("same key, other amount: %v, %d transfers", err, len(e.fake.Transfers()))
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
