package payout_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/paystream/paystream/internal/payout"
)

func (e *env) onboarder(t *testing.T) *payout.Onboarder {
	t.Helper()
	o, err := payout.NewOnboarder(e.db, e.stripe, payout.OnboardingConfig{
		RefreshURL: "https://app.example/payouts/refresh", ReturnURL: "https://app.example/payouts/done"}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Concurrent onboardings of one payee create one Express account; each
// gets a link to it; a later call creates nothing.
func TestOnboardCreatesTheAccountOnce(t *testing.T) {
	e := newEnv(t)
	o := e.onboarder(t)
	const calls = 8
	results := make([]payout.Onboarding, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = o.Onboard(context.Background(), "creator", "alice"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.Created {
			created++
		}
		if r.StripeAccountID != results[0].StripeAccountID || r.Link.URL == "" || r.Link.ExpiresAt.IsZero() {
			t.Fatalf("results = %+v", results)
		}
	}
	if created != 1 || len(e.fake.Accounts()) != 1 {
		t.Fatalf("%d calls created, %d accounts at Stripe", created, len(e.fake.Accounts()))
	}
	a := e.fake.Accounts()[0]
	if a.Metadata[payout.MetadataPayeeKind] != "creator" || a.Metadata[payout.MetadataPayeeID] != "alice" {
		t.Fatalf("account metadata = %v", a.Metadata)
	}
	if p := e.payeeRow(t, "alice"); deref(p.StripeAccountID) != a.ID {
		t.Fatalf("payee row %+v", p)
	}
}

// An onboarding that crashed after Stripe created the account and before
// the commit is retried with the same key: Stripe answers the same account.
func TestOnboardAfterALostCommitGetsTheSameAccount(t *testing.T) {
	e := newEnv(t)
	acct, err := e.stripe.CreateExpressAccount(context.Background(),
		payout.AccountRequest{PayeeKind: "creator", PayeeID: "alice"}, "payee:creator:alice:account")
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.onboarder(t).Onboard(context.Background(), "creator", "alice")
	if err != nil || r.StripeAccountID != acct || len(e.fake.Accounts()) != 1 {
		t.Fatalf("onboard = %+v, %v; accounts %d", r, err, len(e.fake.Accounts()))
	}
}

func TestOnboardRefusesABadPayee(t *testing.T) {
	e := newEnv(t)
	for _, p := range [][2]string{{"user", "x"}, {"organization", "not-a-uuid"}, {"creator", ""}} {
		if _, err := e.onboarder(t).Onboard(context.Background(), p[0], p[1]); !errors.Is(err, payout.ErrInvalidPayee) {
			t.Errorf("Onboard(%q, %q) = %v, want ErrInvalidPayee", p[0], p[1], err)
		}
	}
	if _, err := payout.NewOnboarder(e.db, e.stripe, payout.OnboardingConfig{RefreshURL: "/relative", ReturnURL: "https://x"}, e.log); err == nil {
		t.Error("a relative refresh URL was accepted")
	}
}
