package main

import (
	"context"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// seed makes the two demo plans exist, once; a plan found with other
// values is reported and left alone.
func TestSeedCreatesTheDemoPlans(t *testing.T) {
	bdb, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{"DATABASE_URL": dsn})
	out, err := runCLI(t, env, "seed")
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "inserted 2 subscription plan(s)") || !strings.Contains(out, demo.CreatorPlanID) ||
		!strings.Contains(out, "paystream send subscription-lifecycle") {
		t.Errorf("seed output:\n%s", out)
	}
	var plans []model.SubscriptionPlan
	if err := bdb.NewSelect().Model(&plans).Order("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 {
		t.Fatalf("plans %+v", plans)
	}
	cp, op := plans[0], plans[1]
	if cp.ID.String() != demo.CreatorPlanID || cp.CreatorID == nil || *cp.CreatorID != demo.CreatorID ||
		cp.PriceCents != demo.CreatorPlanPriceCents || cp.OrganizationID.String() != demo.OrganizationID || cp.Interval != "month" ||
		op.ID.String() != demo.OrganizationPlanID || op.CreatorID != nil || op.PriceCents != demo.OrganizationPlanPriceCents ||
		op.GraceDays != demo.PlanGraceDays {
		t.Errorf("plans %+v %+v", cp, op)
	}
	if out, err = runCLI(t, env, "seed"); err != nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second seed: %v\n%s", err, out)
	}
	if _, err := bdb.NewUpdate().Model((*model.SubscriptionPlan)(nil)).Set("price_cents = 1").
		Where("id = ?", demo.CreatorPlanID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, err = runCLI(t, env, "seed"); err == nil || !strings.Contains(err.Error(), "price 1 usd, not 999 usd") {
		t.Fatalf("seed over a changed plan: %v\n%s", err, out)
	}
}
