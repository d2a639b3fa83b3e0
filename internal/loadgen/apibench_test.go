package loadgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/testenv"
)

// A short api bench against the real Postgres: the API (started through
// internal/app) and the direct SQL both answered, both kinds of answer came
// back, and the ratio is computed; not a timing assertion.
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
	if a.Name != "api" || a.Requests == 0 || a.Errors != 0 || a.Concurrency != 2 || a.ByStatus["200"] != a.Requests {
		t.Errorf("api result = %+v", a)
	}
	if d.Name != "direct-sql" || d.Requests == 0 || d.Errors != 0 || d.Concurrency != 2 ||
		d.ByStatus["row"] == 0 || d.ByStatus["no_row"] == 0 {
		t.Errorf("direct result = %+v", d)
	}
	if rep.Ratio <= 0 {
		t.Errorf("ratio = %v", rep.Ratio)
	}
	if got := rep.Extra["customers"]; got != 22 { // 20 with access, 2 without
		t.Errorf("customers = %v, want 22", got)
	}
	if !rep.Finished.After(rep.Started) {
		t.Errorf("started %s, finished %s", rep.Started, rep.Finished)
	}
}

// SeedAccess grants access to half its customers through purchases of the
// demo content under the seeded agreements, and to the rest for free.
func TestSeedAccess(t *testing.T) {
	admin := testenv.ServerURL(t)
	ctx := context.Background()
	d, err := loadgen.OpenDemoDatabase(ctx, admin, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	who, err := loadgen.SeedAccess(ctx, d.DB, d.Purchase, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(who) != 11 || who[0] != "bench_cust_1" || who[10] != "bench_stranger_1" {
		t.Errorf("customers = %v", who)
	}
	p := d.Purchase
	bought, err := d.DB.NewSelect().Table("purchases").
		Where("status = 'completed' AND amount_paid_cents = ? AND platform_fee_cents = ? AND organization_fee_cents = ?",
			p.Amount, p.PlatformFee, p.OrgFee).
		Where("platform_agreement_id = ? AND creator_org_agreement_id = ?", p.PlatformAgreement, p.CreatorOrg).Count(ctx)
	if err != nil || bought != 5 {
		t.Errorf("purchases with the demo split and agreements = %d, %v; want 5", bought, err)
	}
	for typ, want := range map[string]int64{"purchased": 5, "complimentary": 5} {
		n, err := d.DB.NewSelect().Table("content_access").Where("access_type = ? AND content_id = ?", typ, p.ContentID).Count(ctx)
		if err != nil || n != want {
			t.Errorf("%s access rows = %d, %v; want %d", typ, n, err, want)
		}
	}
}
