package payout_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/model"
)

// BenchmarkPayoutRun times one payout run over 10,000 payees, each with an
// available balance, against the stateful fake Stripe (one transfer create
// per payee; the fake answers in microseconds, so this measures the engine
// and Postgres). PAYSTREAM_BENCH_PAYEES changes the count. Its baseline is
// BenchmarkTransferCreates: the same transfer creates, same client and
// worker count, with no engine and no database.
//
//	go test -run '^$' -bench 'BenchmarkPayoutRun|BenchmarkTransferCreates' -benchtime 1x ./internal/payout/
func BenchmarkPayoutRun(b *testing.B) {
	payees := benchPayees(b)
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		seedBalances(b, e, payees)
		r := e.runner(b, nil)
		b.StartTimer()
		s := e.run(b, r)
		b.StopTimer()
		if s.Paid != payees || len(e.fake.Transfers()) != payees {
			b.Fatalf("paid %d of %d (%d transfers)", s.Paid, payees, len(e.fake.Transfers()))
		}
	}
	b.ReportMetric(float64(payees*b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkTransferCreates is BenchmarkPayoutRun's baseline: one transfer
// create per payee straight to the fake Stripe through the engine's client,
// DefaultWorkers at once, each under its own idempotency key: what a run
// costs at least.
func BenchmarkTransferCreates(b *testing.B) {
	payees := benchPayees(b)
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		for i := range payees {
			e.fake.AddAccount("acct_" + creatorN(i))
		}
		next := make(chan int)
		var wg sync.WaitGroup
		var failed atomic.Int64
		b.StartTimer()
		for range payout.DefaultWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					who := creatorN(i)
					_, err := e.stripe.CreateTransfer(context.Background(), payout.TransferRequest{Amount: 500, Currency: "usd",
						Destination: "acct_" + who, TransferGroup: "bench_" + who}, "bench-"+who)
					if err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		for i := range payees {
			next <- i
		}
		close(next)
		wg.Wait()
		b.StopTimer()
		if n := failed.Load(); n > 0 || len(e.fake.Transfers()) != payees {
			b.Fatalf("%d failed, %d transfers of %d", n, len(e.fake.Transfers()), payees)
		}
	}
	b.ReportMetric(float64(payees*b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// benchPayees is 10,000 or PAYSTREAM_BENCH_PAYEES.
func benchPayees(b *testing.B) int {
	b.Helper()
	if v := os.Getenv("PAYSTREAM_BENCH_PAYEES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("PAYSTREAM_BENCH_PAYEES=%q", v)
		}
		return n
	}
	return 10000
}

// seedBalances makes n creator payees, each with one released sale of 500.
func seedBalances(tb testing.TB, e *env, n int) {
	tb.Helper()
	ctx := context.Background()
	const batch = 1000
	at := time.Now().UTC().Add(-time.Hour)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		var (
			contents  []model.Content
			purchases []model.Purchase
			payees    []model.Payee
			posts     []ledger.Transaction
		)
		for i := lo; i < hi; i++ {
			who := creatorN(i)
			acct := "acct_" + who
			e.fake.AddAccount(acct)
			c := model.Content{ID: uuid.New(), CreatorID: who, OrganizationID: e.org, PriceCents: 500, Currency: "usd", Visibility: "public"}
			id := uuid.Must(uuid.NewV7())
			p := model.Purchase{ID: id, CustomerID: "u" + id.String()[:8], ContentID: c.ID, OrganizationID: e.org,
				AmountPaidCents: 500, Currency: "usd", CreatorPayoutCents: 500, StripeCheckoutSessionID: "cs_" + id.String(),
				Status: model.PurchaseCompleted, PurchasedAt: &at, CreatorID: who}
			s, err := ledger.SaleOf(&p)
			if err != nil {
				tb.Fatal(err)
			}
			t, err := ledger.PurchaseCompleted(s)
			if err != nil {
				tb.Fatal(err)
			}
			contents, purchases, posts = append(contents, c), append(purchases, p), append(posts, t)
			payees = append(payees, model.Payee{Kind: model.PayeeCreator, ID: who, StripeAccountID: &acct,
				ChargesEnabled: true, PayoutsEnabled: true, RequirementsDue: model.JSON("[]")})
		}
		for _, rows := range []any{&contents, &purchases, &payees} {
			if _, err := e.db.NewInsert().Model(rows).Exec(ctx); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := ledger.PostMany(ctx, e.db, posts); err != nil {
			tb.Fatal(err)
		}
	}
	for {
		released, err := ledger.ReleaseDue(ctx, e.db, ledger.Config{Hold: 0}, time.Now(), batch)
		if err != nil {
			tb.Fatal(err)
		}
		if released < batch {
			return
		}
	}
}
