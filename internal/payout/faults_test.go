package payout_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/model"
)

// errCrash stands for the process dying at a step: the run stops the payout
// there and writes nothing more.
var errCrash = errors.New("injected crash")

// Faults at each step of a payout — before the Stripe call, during it (the
// fake hangs, drops the connection after creating, answers 500 with or
// without the transfer), after the answer before the commit, and during
// the commit — over many payouts and as many runs as it takes, give 0
// duplicate and 0 lost transfers: every payout ends paid with exactly one
// transfer in its group, and the ledger verifies.
func TestFaultInjectionAtEachStep(t *testing.T) {
	const payees, amount = 24, 700
	steps := []struct {
		name  string
		step  payout.Step // "" = faults inside the Stripe call
		fault func(rng *rand.Rand) stripefake.Fault
	}{
		{"after the payout committed", payout.StepCreated, nil},
		{"before the Stripe call", payout.StepBeforeRequest, nil},
		{"during the Stripe call", "", func(rng *rand.Rand) stripefake.Fault {
			return []stripefake.Fault{stripefake.None, stripefake.Hang, stripefake.CreateThenDrop, stripefake.Created500,
				stripefake.Fail500, stripefake.RateLimit, stripefake.BalanceInsufficient}[rng.IntN(7)]
		}},
		{"after the answer, before the commit", payout.StepAfterAnswer, nil},
		{"during the commit", payout.StepCommit, nil},
	}
	const seeds = 3 // each a fresh world, so each step is hit in many runs
	for i, st := range steps {
		for seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed %d", st.name, seed), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(seed)))
				var mu sync.Mutex
				chance := func() bool { mu.Lock(); defer mu.Unlock(); return rng.IntN(2) == 0 }
				e := newEnv(t)
				for n := range payees {
					e.payee(t, creatorN(n))
					e.earn(t, creatorN(n), amount+int64(n))
				}
				if st.fault != nil {
					e.fake.OnCreate(func(int, string) stripefake.Fault { mu.Lock(); defer mu.Unlock(); return st.fault(rng) })
				}
				crashes := 0
				fault := func(_ context.Context, s payout.Step, _ uuid.UUID) error {
					if s == st.step && chance() {
						mu.Lock()
						crashes++
						mu.Unlock()
						return errCrash
					}
					return nil
				}
				stripe := e.newStripe(t, 0, 200*time.Millisecond)
				runs := 0
				for ; runs < 40 && !allPaid(t, e, payees); runs++ {
					r := e.runner(t, stripe, payout.WithFault(fault))
					if _, err := r.Run(context.Background(), payout.RunOptions{}); err != nil && !errors.Is(err, errCrash) {
						t.Fatalf("run %d: %v", runs, err)
					}
					e.clock.Advance(2 * time.Hour) // past any backoff
				}
				if !allPaid(t, e, payees) {
					t.Fatalf("not every payout paid after %d runs", runs)
				}
				if st.step != "" && crashes == 0 {
					t.Fatal("no fault was injected")
				}
				t.Logf("%d runs, %d injected crashes, %d create requests", runs, crashes, e.fake.Requests()["POST /v1/transfers"])
				e.noDuplicates(t)
				if got := len(e.fake.Transfers()); got != payees {
					t.Fatalf("%d transfers for %d payees", got, payees)
				}
				for _, p := range e.payouts(t) {
					if n := e.fake.TransfersInGroup(p.TransferGroup); n != 1 {
						t.Errorf("payout %s: %d transfers", p.ID, n)
					}
				}
				for n := range payees {
					if got := e.balance(t, creatorN(n), ledger.PaidOut); got != amount+int64(n) {
						t.Errorf("%s paid out %d, earned %d", creatorN(n), got, amount+n)
					}
				}
				e.mustVerify(t)
			})
		}
	}
}

// allPaid reports whether payees payouts exist and all are paid.
func allPaid(t *testing.T, e *env, payees int) bool {
	t.Helper()
	ps := e.payouts(t)
	if len(ps) < payees {
		return false
	}
	for _, p := range ps {
		if p.Status != model.PayoutPaid {
			if p.Status == model.PayoutFailed || p.Status == model.PayoutCanceled {
				t.Fatalf("payout %s %s (%s)", p.ID, p.Status, deref(p.FailureCode))
			}
			return false
		}
	}
	return true
}

// Two runs at once — two processes, or the CLI beside the periodic job —
// make one transfer per payee, with and without Stripe faults between them.
func TestConcurrentRunsPayEachPayeeOnce(t *testing.T) {
	for _, faults := range []bool{false, true} {
		name := "clean"
		if faults {
			name = "with faults"
		}
		t.Run(name, func(t *testing.T) {
			const payees = 40
			e := newEnv(t)
			for n := range payees {
				e.payee(t, creatorN(n))
				e.earn(t, creatorN(n), 1000)
			}
			if faults {
				var mu sync.Mutex
				rng := rand.New(rand.NewPCG(7, 7))
				e.fake.OnCreate(func(int, string) stripefake.Fault {
					mu.Lock()
					defer mu.Unlock()
					return []stripefake.Fault{stripefake.None, stripefake.None, stripefake.CreateThenDrop, stripefake.Created500,
						stripefake.Fail500}[rng.IntN(5)]
				})
			}
			stripe := e.newStripe(t, 0, time.Second)
			for round := 0; round < 20 && !allPaid(t, e, payees); round++ {
				var wg sync.WaitGroup
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := e.runner(t, stripe).Run(context.Background(), payout.RunOptions{}); err != nil {
							t.Errorf("run: %v", err)
						}
					}()
				}
				wg.Wait()
				e.clock.Advance(2 * time.Hour)
			}
			if !allPaid(t, e, payees) {
				t.Fatal("not every payout paid")
			}
			e.noDuplicates(t)
			if n := len(e.fake.Transfers()); n != payees {
				t.Fatalf("%d transfers for %d payees", n, payees)
			}
			if n := len(e.payouts(t)); n != payees {
				t.Fatalf("%d payouts for %d payees", n, payees)
			}
			e.mustVerify(t)
		})
	}
}
