package migrations_test

import (
	"context"
	"testing"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/testenv"
)

// The schema itself refuses what must never be stored, whatever code writes.
func TestSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	bdb, _ := testenv.DB(t)
	const (
		org     = "00000000-0000-4000-8000-0000000000aa"
		content = "00000000-0000-4000-8000-0000000000c1"
	)
	setup := []string{
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES ('` + content + `', 'cr_1', '` + org + `', 2999, 'usd')`,
		`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
			platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
			stripe_checkout_session_id, stripe_payment_intent_id, status, purchased_at)
		 VALUES (gen_random_uuid(), 'u1', '` + content + `', '` + org + `', 2999, 'usd', 300, 0, 2699, 1000, 0, 'cs_1', 'pi_1', 'completed', now())`,
		`INSERT INTO content_access (user_id, content_id, organization_id, access_type, purchase_id)
		 SELECT 'u1', content_id, organization_id, 'purchased', id FROM purchases WHERE stripe_checkout_session_id = 'cs_1'`,
	}
	for _, q := range setup {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("setup %q: %v", q, err)
		}
	}
	purchase := func(amount, p, o, c, bps, session, status, currency, extra string) string {
		return `INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
			platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
			stripe_checkout_session_id, status, purchased_at` + extra + `)
		 VALUES (gen_random_uuid(), 'u2', '` + content + `', '` + org + `', ` + amount + `, '` + currency + `', ` + p + `, ` + o + `, ` + c + `, ` + bps + `, 0, '` + session + `', '` + status + `', now())`
	}
	tests := []struct {
		name  string
		query string
		state string
	}{
		{"split does not sum", purchase("2999", "300", "0", "2698", "1000", "cs_a", "completed", "usd", ""), db.CheckViolation},
		{"negative fee", purchase("2999", "-1", "0", "3000", "1000", "cs_b", "completed", "usd", ""), db.CheckViolation},
		{"bps over 10000", purchase("2999", "300", "0", "2699", "10001", "cs_c", "completed", "usd", ""), db.CheckViolation},
		{"upper-case currency", purchase("2999", "300", "0", "2699", "1000", "cs_d", "completed", "USD", ""), db.CheckViolation},
		{"unknown status", purchase("2999", "300", "0", "2699", "1000", "cs_e", "shipped", "usd", ""), db.CheckViolation},
		{"duplicate checkout session", purchase("2999", "300", "0", "2699", "1000", "cs_1", "completed", "usd", ""), db.UniqueViolation},
		{"refunded without refunded_at", purchase("2999", "300", "0", "2699", "1000", "cs_f", "refunded", "usd", ""), db.CheckViolation},
		{"content of another organization",
			`INSERT INTO content_access (user_id, content_id, organization_id, access_type) VALUES ('u9', '` + content + `', gen_random_uuid(), 'complimentary')`,
			db.ForeignKeyViolation},
		{"second access row for the same user and content",
			`INSERT INTO content_access (user_id, content_id, organization_id, access_type) VALUES ('u1', '` + content + `', '` + org + `', 'complimentary')`,
			db.UniqueViolation},
		{"purchased access without purchase",
			`INSERT INTO content_access (user_id, content_id, organization_id, access_type) VALUES ('u3', '` + content + `', '` + org + `', 'purchased')`,
			db.CheckViolation},
		{"negative price", `INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES (gen_random_uuid(), 'c', gen_random_uuid(), -1, 'usd')`, db.CheckViolation},
		{"platform fee over 100%", `INSERT INTO platform_fee_config (platform_fee_percentage, effective_from) VALUES (10001, now())`, db.CheckViolation},
		{"window ends before it starts", `INSERT INTO creator_organization_agreements (creator_id, organization_id, organization_fee_percentage, effective_from, effective_until) VALUES ('c', gen_random_uuid(), 10, now(), now() - interval '1 day')`, db.CheckViolation},
		{"unknown stripe event outcome", `INSERT INTO stripe_events (event_id, type, endpoint, livemode, processed_at, outcome, payload) VALUES ('evt_1', 't', 'default', false, now(), 'maybe', '{}')`, db.CheckViolation},
		{"outbox subject outside purchases", `INSERT INTO outbox (id, subject, event_type, aggregate_id, payload) VALUES (gen_random_uuid(), 'stripe.x', 't', gen_random_uuid(), '{}')`, db.CheckViolation},
		{"outbox subject with a wildcard", `INSERT INTO outbox (id, subject, event_type, aggregate_id, payload) VALUES (gen_random_uuid(), 'payouts.>', 't', gen_random_uuid(), '{}')`, db.CheckViolation},
		{"outbox subject of a family prefix only", `INSERT INTO outbox (id, subject, event_type, aggregate_id, payload) VALUES (gen_random_uuid(), 'subscriptions.', 't', gen_random_uuid(), '{}')`, db.CheckViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bdb.ExecContext(ctx, tt.query)
			if got := db.SQLState(err); got != tt.state {
				t.Fatalf("SQLSTATE = %q (%v), want %s", got, err, tt.state)
			}
		})
	}
}
