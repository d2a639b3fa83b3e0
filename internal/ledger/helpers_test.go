package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// t0 is the tests' purchase time.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// world is a catalog of a few organizations and creators, with purchases.
type world struct {
	db       *bun.DB
	orgs     []uuid.UUID
	creators []string
	content  map[[2]int]uuid.UUID // (creator, org) → content id
}

func newWorld(t *testing.T, nOrgs, nCreators int) *world {
	t.Helper()
	db, _ := testenv.DB(t)
	w := &world{db: db, content: map[[2]int]uuid.UUID{}}
	for i := range nOrgs {
		w.orgs = append(w.orgs, uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)))
	}
	for i := range nCreators {
		w.creators = append(w.creators, fmt.Sprintf("cr_%d", i+1))
	}
	var cs []model.Content
	for ci := range w.creators {
		for oi, org := range w.orgs {
			id := uuid.New()
			w.content[[2]int{ci, oi}] = id
			cs = append(cs, model.Content{ID: id, CreatorID: w.creators[ci], OrganizationID: org, PriceCents: 100, Currency: "usd", Visibility: "public"})
		}
	}
	if _, err := db.NewInsert().Model(&cs).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// purchase is a paid purchase the tests made, with its sale.
type purchase struct {
	row  model.Purchase
	sale Sale
}

// addPurchases inserts n completed purchases with random amounts, rates,
// creators and organizations, in currency cur.
func (w *world) addPurchases(t *testing.T, rng *rand.Rand, n int, cur string) []purchase {
	t.Helper()
	out := make([]purchase, n)
	rows := make([]model.Purchase, n)
	for i := range n {
		ci, oi := rng.IntN(len(w.creators)), rng.IntN(len(w.orgs))
		amount := rng.Int64N(100_000)
		if i%10 == 0 {
			amount = rng.Int64N(10) // rounding at its worst
		}
		sp, err := split.Compute(amount, split.Terms{PlatformBps: rng.IntN(split.MaxBps + 1), OrganizationBps: rng.IntN(split.MaxBps + 1)})
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(i) * time.Second)
		id := uuid.Must(uuid.NewV7())
		rows[i] = model.Purchase{
			ID: id, CustomerID: "u" + id.String()[:8], ContentID: w.content[[2]int{ci, oi}], OrganizationID: w.orgs[oi],
			AmountPaidCents: amount, Currency: cur, PlatformFeeCents: sp.Platform, OrganizationFeeCents: sp.Organization,
			CreatorPayoutCents: sp.Creator, PlatformFeeBps: sp.PlatformBps, OrganizationFeeBps: sp.OrganizationBps,
			StripeCheckoutSessionID: "cs_" + id.String(), Status: model.PurchaseCompleted, PurchasedAt: &at,
			CreatorID: w.creators[ci],
		}
		s, err := SaleOf(&rows[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = purchase{row: rows[i], sale: s}
	}
	if _, err := w.db.NewInsert().Model(&rows).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

// balances returns every account's stored balance.
func balances(t *testing.T, db bun.IDB) map[Account]int64 {
	t.Helper()
	var as []model.LedgerAccount
	if err := db.NewSelect().Model(&as).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[Account]int64{}
	for _, a := range as {
		out[Account{Owner: a.Owner, Currency: a.Currency, Kind: Kind(a.Kind)}] = a.Balance
	}
	return out
}

// mustVerify fails the test on any difference.
func mustVerify(t *testing.T, db *bun.DB) {
	t.Helper()
	d, err := Verify(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		t.Fatal(d)
	}
}

// postTx posts ts in a transaction of its own.
func postTx(t *testing.T, db *bun.DB, ts ...Transaction) []Outcome {
	t.Helper()
	var out []Outcome
	err := db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = PostMany(ctx, tx, ts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pgArray(v any) any { return pgdialect.Array(v) }

func uuidV7(t *testing.T) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
