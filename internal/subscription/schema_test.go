package subscription

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
)

// The schema refuses what must never be stored, whatever code writes.
func TestSchemaConstraints(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	const sub = `INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end,
		past_due_since, access_until, event_created, last_event_id) VALUES `
	plan := "'" + planA.String() + "'"
	org := "'" + orgID.String() + "'"
	setup := []string{
		sub + `('sub_ok', 'u1', ` + plan + `, 'active', now(), now() + interval '1 month', NULL, now() + interval '1 month', now(), 'evt_1')`,
		`INSERT INTO subscription_invoices (id, subscription_id, plan_id, organization_id, creator_id, period_start, period_end,
			amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps,
			organization_fee_bps, status, paid_at, stripe_charge_id)
		 VALUES ('in_ok', 'sub_ok', ` + plan + `, ` + org + `, 'cr_A', now(), now(), 1000, 'usd', 100, 180, 720, 1000, 2000, 'paid', now(), 'ch_ok')`,
	}
	for _, q := range setup {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("setup: %v\n%s", err, q)
		}
	}
	invoice := func(cols, vals string) string {
		return `INSERT INTO subscription_invoices (id, subscription_id, plan_id, organization_id, creator_id, period_start, period_end,
			amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps,
			organization_fee_bps, status, paid_at` + cols + `)
		 VALUES ('in_x', 'sub_ok', ` + plan + `, ` + org + `, ` + vals + `)`
	}
	update := func(set string) string { return `UPDATE subscription_invoices SET ` + set + ` WHERE id = 'in_ok'` }
	tests := []struct {
		name, query, state string
	}{
		{"plan without a name", `INSERT INTO subscription_plans (organization_id, name, price_cents, currency, interval) VALUES (` + org + `, '', 1, 'usd', 'month')`, db.CheckViolation},
		{"plan billed weekly", `INSERT INTO subscription_plans (organization_id, name, price_cents, currency, interval) VALUES (` + org + `, 'w', 1, 'usd', 'week')`, db.CheckViolation},
		{"plan every 4 years", `INSERT INTO subscription_plans (organization_id, name, price_cents, currency, interval, interval_count) VALUES (` + org + `, 'y', 1, 'usd', 'year', 4)`, db.CheckViolation},
		{"free plan", `INSERT INTO subscription_plans (organization_id, name, price_cents, currency, interval) VALUES (` + org + `, 'f', 0, 'usd', 'month')`, db.CheckViolation},
		{"plan changes creator", `UPDATE subscription_plans SET creator_id = 'cr_B' WHERE id = ` + plan, db.CheckViolation},
		{"plan changes organization", `UPDATE subscription_plans SET organization_id = gen_random_uuid() WHERE id = ` + plan, db.CheckViolation},
		{"unknown status", sub + `('sub_x', 'u1', ` + plan + `, 'dormant', now(), now() + interval '1 day', NULL, NULL, now(), 'e')`, db.CheckViolation},
		{"canceled with access", sub + `('sub_x', 'u1', ` + plan + `, 'canceled', now(), now() + interval '1 day', NULL, now(), now(), 'e')`, db.CheckViolation},
		{"past_due without since", sub + `('sub_x', 'u1', ` + plan + `, 'past_due', now(), now() + interval '1 day', NULL, now(), now(), 'e')`, db.CheckViolation},
		{"since while active", sub + `('sub_x', 'u1', ` + plan + `, 'active', now(), now() + interval '1 day', now(), now(), now(), 'e')`, db.CheckViolation},
		{"empty period", sub + `('sub_x', 'u1', ` + plan + `, 'active', now(), now(), NULL, now(), now(), 'e')`, db.CheckViolation},
		{"unknown plan", sub + `('sub_x', 'u1', gen_random_uuid(), 'active', now(), now() + interval '1 day', NULL, now(), now(), 'e')`, db.ForeignKeyViolation},
		{"split does not sum", invoice("", `'cr_A', now(), now(), 1000, 'usd', 100, 180, 719, 1000, 2000, 'paid', now()`), db.CheckViolation},
		{"organization plan pays a creator", invoice("", `NULL, now(), now(), 1000, 'usd', 100, 180, 720, 1000, 2000, 'paid', now()`), db.CheckViolation},
		{"invoice of another plan", `INSERT INTO subscription_invoices (id, subscription_id, plan_id, organization_id, period_start, period_end,
			amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps,
			organization_fee_bps, status, paid_at) VALUES ('in_x', 'sub_ok', '` + planOrg.String() + `', ` + org + `, now(), now(), 0, 'usd', 0, 0, 0, 0, 0, 'paid', now())`, db.ForeignKeyViolation},
		{"status ahead of the refund", update(`status = 'refunded', refunded_at = now()`), db.CheckViolation},
		{"refund over the amount", update(`refund_amount_cents = 1001, status = 'refunded', refunded_at = now()`), db.CheckViolation},
		{"refunded without refunded_at", update(`refund_amount_cents = 1000, status = 'refunded', reversed_platform_fee_cents = 100,
			reversed_organization_fee_cents = 180, reversed_creator_payout_cents = 720`), db.CheckViolation},
		{"refund not reversed", update(`refund_amount_cents = 500, status = 'partially_refunded'`), db.CheckViolation},
		{"reversal beyond a share", update(`refund_amount_cents = 500, status = 'partially_refunded', reversed_platform_fee_cents = 101,
			reversed_organization_fee_cents = 0, reversed_creator_payout_cents = 399`), db.CheckViolation},
		{"lost dispute not reversed", update(`dispute_status = 'lost', dispute_amount_cents = 1000`), db.CheckViolation},
		{"second invoice on one charge", invoice(", stripe_charge_id", `'cr_A', now(), now(), 0, 'usd', 0, 0, 0, 0, 0, 'paid', now(), 'ch_ok'`), db.UniqueViolation},
		{"payment link to nothing", `INSERT INTO subscription_invoice_payments (id, invoice_id) VALUES ('inpay_x', 'in_ok')`, db.CheckViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inTx(t, bdb, func(tx bun.Tx) {
				_, err := tx.ExecContext(ctx, tt.query)
				if got := db.SQLState(err); got != tt.state {
					t.Fatalf("SQLSTATE = %q (%v), want %s", got, err, tt.state)
				}
			})
		})
	}
	// And what it must accept: a lost dispute with its reversal.
	inTx(t, bdb, func(tx bun.Tx) {
		if _, err := tx.ExecContext(ctx, update(`dispute_status = 'lost', dispute_amount_cents = 1000, reversed_platform_fee_cents = 100,
			reversed_organization_fee_cents = 180, reversed_creator_payout_cents = 720`)); err != nil {
			t.Errorf("a lost dispute with its reversal: %v", err)
		}
	})
}
