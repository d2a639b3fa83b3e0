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
	testenv.PostgresURL(t) // skips (or fails under CI=true) without Postgres
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := loadgen.RunAPIBench(ctx, loadgen.APIBenchConfig{DatabaseURL: testenv.AdminURL(),
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
