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
	p, err := loadgen.NewPayloads(loadgen.PayloadSpec{ContentID: pur.ContentID.String(), OrganizationID: pur.OrganizationID.String(),
		Amount: pur.Amount, Currency: pur.Currency})
	if err != nil {
		t.Fatal(err)
	}
	before, err := loadgen.TableCounts(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	if _, err := loadgen.SQLBaseline(ctx, bdb, p, pur, n, 3, nil); err != nil {
		t.Fatal(err)
	}
	snap, err := loadgen.SnapshotCommitted(ctx, dsn, before, n)
	if err != nil {
		t.Fatal(err)
	}
	source, err := loadgen.TableCounts(ctx, dsn)
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
	for _, tb := range want {
		if got[tb] != source[tb] {
			t.Errorf("%s: ceiling holds %d rows, the drain left %d", tb, got[tb], source[tb])
		}
	}
	if got["stripe_events"] != n || got["ledger_entries"] != 4*n {
		t.Errorf("rows: %v", got)
	}
	if res.Requests != n || res.PerSecond <= 0 || res.CPU == nil {
		t.Errorf("result = %+v", res)
	}
}
