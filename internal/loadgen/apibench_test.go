package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// A short access bench against the real Postgres: the API (its own
// process, started through internal/app) and the direct SQL both answered
// every kind of access the seed grants, in the same proportions, with the
// CPU times measured on both sides; not a timing assertion.
func TestRunAPIBenchReportsAPIAndDirectSQL(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := loadgen.RunAPIBench(ctx, loadgen.APIBenchConfig{DatabaseURL: admin,
		Concurrency: 2, Duration: time.Second, Customers: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "api" || len(rep.Results) != 2 {
		t.Fatalf("report = %+v, want kind api with two results", rep)
	}
	a, d := rep.Results[0], rep.Results[1]
	// 22 customers: 10 purchased (two of them also subscribed), 2
	// complimentary, 8 through a subscription alone, 2 without access.
	want := map[string]float64{model.AccessPurchased: 10.0 / 22, model.AccessComplimentary: 2.0 / 22,
		model.AccessSubscription: 8.0 / 22, "none": 2.0 / 22}
	for _, r := range []loadgen.Result{a, d} {
		if r.Requests < 200 || r.Errors != 0 || r.Concurrency != 2 || len(r.ByStatus) != len(want) {
			t.Errorf("%s result = %+v, want ≥ 200 answers of %d kinds, no errors", r.Name, r, len(want))
			continue
		}
		for label, share := range want {
			got := float64(r.ByStatus[label]) / float64(r.Requests)
			if got < share/2 || got > share*2 {
				t.Errorf("%s: %q answers %d of %d, want about %.0f%%", r.Name, label, r.ByStatus[label], r.Requests, share*100)
			}
		}
		if r.ClientCPUPerRequest <= 0 {
			t.Errorf("%s: client CPU per request %s, want it measured", r.Name, r.ClientCPUPerRequest)
		}
	}
	if a.Name != "api" || d.Name != "direct-sql" {
		t.Errorf("results %q, %q", a.Name, d.Name)
	}
	if a.CPUPerRequest <= 0 || d.CPUPerRequest != 0 {
		t.Errorf("API CPU per check %s (want measured), direct %s (want none)", a.CPUPerRequest, d.CPUPerRequest)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio = %v", rep.Ratio)
	}
	if rep.Extra["customers"] != 22 || rep.Extra["query"] != "subscription.AccessQuery" || rep.Extra["route"] != "access" ||
		rep.Extra["http_client"] != "load tool's keep-alive HTTP/1.1" {
		t.Errorf("extra = %v", rep.Extra)
	}
	// The API's histogram counted the run's statements: at least one, and
	// never more checks per statement than the two callers in flight.
	if n, _ := rep.Extra["access_statements"].(float64); n < 1 {
		t.Errorf("access_statements = %v", rep.Extra["access_statements"])
	}
	if v, _ := rep.Extra["access_checks_per_statement"].(float64); v < 1 || v > 2 {
		t.Errorf("access_checks_per_statement = %v, want 1–2 at concurrency 2", rep.Extra["access_checks_per_statement"])
	}
	if rep.Extra["access_workers"] != 1 || rep.Extra["access_batch"] != 64 {
		t.Errorf("access workers %v, batch %v; want the API's defaults", rep.Extra["access_workers"], rep.Extra["access_batch"])
	}
	if v, _ := rep.Extra["api_cpu_us_per_request"].(float64); v <= 0 {
		t.Errorf("api_cpu_us_per_request = %v", rep.Extra["api_cpu_us_per_request"])
	}
	if !rep.Finished.After(rep.Started) {
		t.Errorf("started %s, finished %s", rep.Started, rep.Finished)
	}
}

// The payee route over a seeded ledger: every read answers 200 through the
// API and finds the payee directly.
func TestRunAPIBenchPayeeRoute(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := loadgen.RunAPIBench(ctx, loadgen.APIBenchConfig{DatabaseURL: admin, Route: loadgen.APIRoutePayee,
		Concurrency: 2, Duration: 500 * time.Millisecond, LedgerEntries: 2000, NetHTTP: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	a, d := rep.Results[0], rep.Results[1]
	if a.Requests == 0 || a.Errors != 0 || a.ByStatus["200"] != a.Requests || a.CPUPerRequest <= 0 {
		t.Errorf("api result = %+v", a)
	}
	if d.Requests == 0 || d.Errors != 0 || d.ByStatus["payee"] != d.Requests {
		t.Errorf("direct result = %+v", d)
	}
	if rep.Extra["ledger_entries"] != 2000 || rep.Extra["payees_measured"] != 17 || rep.Extra["http_client"] != "net/http" {
		t.Errorf("extra = %v", rep.Extra)
	}
}

// SeedAccess grants access to half its customers through purchases of the
// demo content under the seeded agreements, to a tenth for free, and to the
// rest through a subscription alone; the access check (the route's own
// statement and decision) answers each as seeded, a purchase winning over
// a subscription.
func TestSeedAccess(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx := context.Background()
	d, err := loadgen.OpenDemoDatabase(ctx, admin, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	who, err := loadgen.SeedAccess(ctx, d.DB, d.Purchase, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(who) != 22 || who[0] != "bench_cust_1" || who[20] != "bench_stranger_1" {
		t.Errorf("customers = %v", who)
	}
	p := d.Purchase
	bought, err := d.DB.NewSelect().Table("purchases").
		Where("status = 'completed' AND amount_paid_cents = ? AND platform_fee_cents = ? AND organization_fee_cents = ?",
			p.Amount, p.PlatformFee, p.OrgFee).
		Where("platform_agreement_id = ? AND creator_org_agreement_id = ?", p.PlatformAgreement, p.CreatorOrg).Count(ctx)
	if err != nil || bought != 10 {
		t.Errorf("purchases with the demo split and agreements = %d, %v; want 10", bought, err)
	}
	now := time.Now()
	counts := map[string]int{}
	for i, c := range who {
		acc, err := subscription.CheckAccess(ctx, d.DB.DB, c, p.ContentID, now)
		if err != nil {
			t.Fatal(err)
		}
		typ := "none"
		if acc.Found {
			typ = acc.Type
			if !acc.Active {
				t.Errorf("%s: %s access not active", c, acc.Type)
			}
		}
		counts[typ]++
		var want string
		switch n := i + 1; {
		case n <= 10:
			want = model.AccessPurchased
		case n <= 12:
			want = model.AccessComplimentary
		case n <= 20:
			want = model.AccessSubscription
			if wantStatus := map[bool]string{true: "past_due", false: "active"}[n%5 == 0]; acc.Subscription == nil ||
				acc.Subscription.Status != wantStatus {
				t.Errorf("%s: subscription %+v, want %s", c, acc.Subscription, wantStatus)
			}
		default:
			want = "none"
		}
		if typ != want {
			t.Errorf("%s: access %q, want %q", c, typ, want)
		}
	}
	// Customers 4 and 8 bought and subscribed; bench_stranger_1's
	// subscription is canceled.
	subs, err := d.DB.NewSelect().Table("subscriptions").Where("access_until IS NOT NULL").Count(ctx)
	if err != nil || subs != 10 {
		t.Errorf("live subscriptions = %d, %v; want 10", subs, err)
	}
	t.Logf("answers: %v", counts)
}

// SeedLedger writes a ledger `ledger verify` accepts, with the entries
// asked for, the hot payees onboarded and their balances stored; the
// baseline's payee statement is the route's, with placeholders.
func TestSeedLedger(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx := context.Background()
	d, err := loadgen.OpenDemoDatabase(ctx, admin, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seed, err := loadgen.SeedLedger(ctx, d.DB, d.Purchase, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if seed.Purchases != 250 || seed.Entries != 1000 || len(seed.Hot) != 17 {
		t.Errorf("seed = %+v, want 250 purchases, 1000 entries, 17 hot payees", seed)
	}
	diff, err := ledger.Verify(ctx, d.DB)
	if err != nil || diff != nil {
		t.Fatalf("ledger verify = %v, %v", diff, err)
	}
	var hot struct {
		Balance int64 `bun:"balance"`
		Version int64 `bun:"version"`
	}
	if err := d.DB.NewRaw(`SELECT balance, version FROM ledger_accounts WHERE owner = 'creator:bench_hot_1' AND kind = 'pending'`).
		Scan(ctx, &hot); err != nil {
		t.Fatal(err)
	}
	// 125 of the 250 sales are the hot creators', 16 of them: creator 1 sold 8 (creator 0 sold 7).
	if hot.Version != 8 || hot.Balance != 8*d.Purchase.Creator {
		t.Errorf("bench_hot_1 pending = %+v, want 8 sales of %d", hot, d.Purchase.Creator)
	}
	onboarded, err := d.DB.NewSelect().Table("payees").Where("payouts_enabled").Count(ctx)
	if err != nil || onboarded != 17 {
		t.Errorf("onboarded payees = %d, %v; want 17", onboarded, err)
	}
	if q := loadgen.PayeeRowQuery(d.DB); !containsAll(q, `FROM "payees"`, "$1", "$2") {
		t.Errorf("payee row query = %s", q)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
