package loadgen_test

import (
	"context"
	"testing"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/testenv"
)

// The SQL baseline writes what the processor writes for a paid checkout,
// the sale's ledger posting included: concurrent baseline transactions
// leave a ledger that ledger.Verify accepts (each purchase posted with its
// split, balances and versions the running sums of their entries).
func TestSQLBaselinePostsEachSaleAsTheLedgerDoes(t *testing.T) {
	ctx := context.Background()
	bdb, _ := testenv.DB(t)
	pur, err := loadgen.SeedDemo(ctx, bdb)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadgen.NewPayloads(loadgen.DemoPayloadSpec(0))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	res, err := loadgen.SQLBaseline(ctx, bdb, p, pur, n, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != n || res.Errors != 0 {
		t.Fatalf("result = %+v", res)
	}
	d, err := ledger.Verify(ctx, bdb)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		t.Fatal(d)
	}
	var txs, entries int
	if err := bdb.NewRaw(`SELECT (SELECT count(*) FROM ledger_transactions WHERE cause = 'purchase'), (SELECT count(*) FROM ledger_entries)`).
		Scan(ctx, &txs, &entries); err != nil {
		t.Fatal(err)
	}
	// Each sale: stripe_clearing, and the pending account of each party
	// with a share (the demo's split has all three).
	if txs != n || entries != 4*n {
		t.Errorf("%d sale postings with %d entries, want %d with %d", txs, entries, n, 4*n)
	}
}
