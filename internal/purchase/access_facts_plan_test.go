package purchase

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/internal/testenv"
)

// The purchases of a pair are read through purchases_customer_content_idx
// on a database whose statistics were never gathered (autovacuum off, as on
// the soak's server), where one content item sold thousands of times: the
// planner never gets to choose purchases_content_idx, which reads every sale
// of the item. A deleted purchase is left out of the facts either way.
func TestAccessFactsReadThePairsIndex(t *testing.T) {
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	org, content := uuid.New(), uuid.New()
	for _, q := range []string{
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES ('` + content.String() + `', 'cr_1', '` + org.String() + `', 500, 'usd')`,
		`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
		    platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
		    stripe_checkout_session_id, status, purchased_at, deleted_at)
		 SELECT gen_random_uuid(), 'user_' || (g % 20000), '` + content.String() + `', '` + org.String() + `', 500, 'usd', 50, 0, 450, 1000, 0,
		        'cs_' || g, 'completed', now() - g * interval '1 second', CASE WHEN g = 20001 THEN now() END
		 FROM generate_series(1, 20001) g`, // user_1 bought twice (g = 1 and 20001); the second is deleted
	} {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	users, contents := pgdialect.Array([]string{"user_1", "user_2"}), pgdialect.Array([]string{content.String(), content.String()})
	var plan []byte
	if err := bdb.NewRaw("EXPLAIN (FORMAT JSON) "+accessFactsManyQuery, users, contents).Scan(ctx, &plan); err != nil {
		t.Fatal(err)
	}
	if s := string(plan); strings.Contains(s, "purchases_content_idx") || !strings.Contains(s, "purchases_customer_content_idx") {
		t.Errorf("the pairs' purchases are not read through purchases_customer_content_idx:\n%s", s)
	}
	var many []struct {
		accessFactsRow
		Ord int `bun:"ord"`
	}
	if err := bdb.NewRaw(accessFactsManyQuery, users, contents).Scan(ctx, &many); err != nil {
		t.Fatal(err)
	}
	var one accessFactsRow
	if err := bdb.NewRaw(accessFactsQuery, "user_1", content, "user_1", content).Scan(ctx, &one); err != nil {
		t.Fatal(err)
	}
	for name, js := range map[string][]byte{"many, user_1": many[0].Purchases, "many, user_2": many[1].Purchases, "one, user_1": one.Purchases} {
		var ps []map[string]any
		if err := json.Unmarshal(js, &ps); err != nil || len(ps) != 1 {
			t.Errorf("%s: purchases %s (%v), want the one live purchase", name, js, err)
		}
	}
}
