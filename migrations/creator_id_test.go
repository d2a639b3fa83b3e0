package migrations_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uptrace/bun/migrate"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
)

// purchases.creator_id: rows from before the column get their content's
// creator, the column is NOT NULL afterwards, a writer that leaves it out
// gets the content's creator, and a paid purchase's creator never changes.
func TestPurchasesCreatorID(t *testing.T) {
	ctx := context.Background()
	bdb, err := db.Open(ctx, testenv.PostgresURL(t), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })

	// The schema as it was before the column.
	all, err := migrations.Load()
	if err != nil {
		t.Fatal(err)
	}
	before := migrate.NewMigrations()
	for _, m := range all.Sorted() {
		if m.Name < "20261207400000" {
			before.Add(m)
		}
	}
	m := migrate.NewMigrator(bdb, before)
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const (
		org      = "00000000-0000-4000-8000-0000000000aa"
		content1 = "00000000-0000-4000-8000-0000000000c1"
		content2 = "00000000-0000-4000-8000-0000000000c2"
	)
	insertPurchase := func(id, content, session, status, extra, extraValue string) string {
		purchasedAt := "now()"
		if status == "pending" {
			purchasedAt = "NULL"
		}
		return `INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
			platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
			stripe_checkout_session_id, status, purchased_at` + extra + `)
		 VALUES ('` + id + `', 'u1', '` + content + `', '` + org + `', 100, 'usd', 10, 0, 90, 1000, 0, '` + session + `', '` + status + `', ` + purchasedAt + extraValue + `)`
	}
	for _, q := range []string{
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES ('` + content1 + `', 'cr_1', '` + org + `', 100, 'usd')`,
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES ('` + content2 + `', 'cr_2', '` + org + `', 100, 'usd')`,
		insertPurchase("00000000-0000-4000-8000-000000000001", content1, "cs_1", "completed", "", ""),
		insertPurchase("00000000-0000-4000-8000-000000000002", content2, "cs_2", "pending", "", ""),
	} {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	if _, err := migrations.Up(ctx, bdb); err != nil {
		t.Fatal(err)
	}
	creatorOf := func(id string) string {
		t.Helper()
		var c string
		if err := bdb.NewRaw(`SELECT creator_id FROM purchases WHERE id = ?`, id).Scan(ctx, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := creatorOf("00000000-0000-4000-8000-000000000001"); got != "cr_1" {
		t.Errorf("existing purchase of content 1: creator_id %q, want cr_1", got)
	}
	if got := creatorOf("00000000-0000-4000-8000-000000000002"); got != "cr_2" {
		t.Errorf("existing purchase of content 2: creator_id %q, want cr_2", got)
	}
	var nullable string
	if err := bdb.NewRaw(`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'purchases' AND column_name = 'creator_id'`).
		Scan(ctx, &nullable); err != nil || nullable != "NO" {
		t.Errorf("creator_id is_nullable = %q (%v), want NO", nullable, err)
	}

	// A writer that leaves it out gets the content's creator; one that sets
	// it keeps its own (the snapshot it took).
	for _, q := range []string{
		insertPurchase("00000000-0000-4000-8000-000000000003", content1, "cs_3", "completed", "", ""),
		insertPurchase("00000000-0000-4000-8000-000000000004", content1, "cs_4", "completed", ", creator_id", ", 'cr_then'"),
	} {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if got := creatorOf("00000000-0000-4000-8000-000000000003"); got != "cr_1" {
		t.Errorf("purchase inserted without creator_id: %q, want the content's cr_1", got)
	}
	if got := creatorOf("00000000-0000-4000-8000-000000000004"); got != "cr_then" {
		t.Errorf("purchase inserted with creator_id cr_then: %q", got)
	}

	tests := []struct {
		name  string
		query string
		state string // "" = accepted
	}{
		{"unknown content", insertPurchase("00000000-0000-4000-8000-000000000005", "00000000-0000-4000-8000-0000000000ff", "cs_5", "completed", "", ""), db.ForeignKeyViolation},
		{"empty creator", insertPurchase("00000000-0000-4000-8000-000000000006", content1, "cs_6", "completed", ", creator_id", ", ''"), db.CheckViolation},
		{"a paid purchase's creator changes", `UPDATE purchases SET creator_id = 'cr_9' WHERE id = '00000000-0000-4000-8000-000000000001'`, db.CheckViolation},
		{"a pending purchase's creator changes (taken again at payment)", `UPDATE purchases SET creator_id = 'cr_9' WHERE id = '00000000-0000-4000-8000-000000000002'`, ""},
		{"a paid purchase changes otherwise", `UPDATE purchases SET refund_amount_cents = 10, status = 'partially_refunded' WHERE id = '00000000-0000-4000-8000-000000000001'`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bdb.ExecContext(ctx, tt.query)
			if got := db.SQLState(err); got != tt.state {
				t.Fatalf("SQLSTATE = %q (%v), want %q", got, err, tt.state)
			}
		})
	}

	// Down and up again.
	if _, err := migrations.Rollback(ctx, bdb); err != nil {
		t.Fatal(err)
	}
	var cols int
	if err := bdb.NewRaw(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'purchases' AND column_name = 'creator_id'`).
		Scan(ctx, &cols); err != nil || cols != 0 {
		t.Errorf("after rollback: %d creator_id columns (%v)", cols, err)
	}
	if _, err := migrations.Up(ctx, bdb); err != nil && !strings.Contains(err.Error(), "no new migrations") {
		t.Fatal(err)
	}
	if got := creatorOf("00000000-0000-4000-8000-000000000004"); got != "cr_1" {
		t.Errorf("after down and up: %q, want the content's cr_1", got)
	}
}
