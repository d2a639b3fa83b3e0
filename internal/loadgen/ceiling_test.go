package loadgen_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/testenv"
)

// The COPY ceiling writes exactly the rows a drain added: the tables whose
// count changed, each with as many rows as the drain left in it.
func TestCopyCeilingWritesTheDrainsRows(t *testing.T) {
	ctx := context.Background()
	bdb, dsn := testenv.DB(t)
	pur, err := loadgen.SeedDemo(ctx, bdb)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadgen.NewPayloads(loadgen.DemoPayloadSpec(0))
	if err != nil {
		t.Fatal(err)
	}
	// Rows written before the mark are not the drain's.
	if _, err := loadgen.SQLBaseline(ctx, bdb, p, pur, 5, 1, nil); err != nil {
		t.Fatal(err)
	}
	mark, err := loadgen.MarkRows(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	if _, err := loadgen.SQLBaseline(ctx, bdb, p, pur, n, 3, nil); err != nil {
		t.Fatal(err)
	}
	snap, err := loadgen.SnapshotCommitted(ctx, dsn, mark, n)
	if err != nil {
		t.Fatal(err)
	}
	res, got, err := loadgen.CopyCeiling(ctx, dsn, snap, loadgen.NewCPUSampler(ctx, bdb))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"content_access", "ledger_accounts", "ledger_entries", "ledger_transactions", "outbox", "purchases", "stripe_events"}
	if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, want) {
		t.Fatalf("copied tables %v, want %v", names, want)
	}
	// Each event: its row in each table; the ledger's four accounts, whose
	// balances every posting updates, once each.
	rows := map[string]int64{"content_access": n, "ledger_accounts": 4, "ledger_entries": 4 * n, "ledger_transactions": n,
		"outbox": n, "purchases": n, "stripe_events": n}
	if !maps.Equal(got, rows) {
		t.Errorf("ceiling rows %v, want %v", got, rows)
	}
	if res.Requests != n || res.PerSecond <= 0 || res.CPU == nil {
		t.Errorf("result = %+v", res)
	}
}
