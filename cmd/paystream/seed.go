package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/model"
)

// seedEffectiveFrom is when the seeded agreements start (see
// purchase.SeedEffectiveFrom).
var seedEffectiveFrom = purchase.SeedEffectiveFrom() // read-only

// seedFlags names the flag of each field purchase.Seed.Validate checks.
var seedFlags = map[string]string{ // read-only
	purchase.SeedCreator: "--creator", purchase.SeedCurrency: "--currency", purchase.SeedPrice: "--price",
	purchase.SeedPlatformBps: "--platform-bps", purchase.SeedOrgBps: "--org-bps",
}

// seedOptions are the flags of `paystream seed`.
type seedOptions struct {
	content, org, creator, currency string
	price                           int64
	platformBps, orgBps             int
}

// seedPlan is the validated form of seedOptions: the rows seed wants to
// exist, and the split they give a purchase.
type seedPlan struct {
	purchase.Seed
	expectSplit split.Split
	plans       []model.SubscriptionPlan // the demo creator's plan and the organization's
}

func runSeed(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var o seedOptions
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.content, "content", demo.ContentID, "content id (uuid)")
	fs.StringVar(&o.org, "org", demo.OrganizationID, "organization id (uuid) owning the content")
	fs.StringVar(&o.creator, "creator", demo.CreatorID, "creator id of the content")
	fs.Int64Var(&o.price, "price", demo.PriceCents, "content price in minor units")
	fs.StringVar(&o.currency, "currency", demo.Currency, "content currency (ISO 4217, lower case)")
	fs.IntVar(&o.platformBps, "platform-bps", split.DefaultPlatformBps, "organization platform agreement: platform fee in basis points (0-10000)")
	fs.IntVar(&o.orgBps, "org-bps", 500, "creator-organization agreement: organization fee in basis points (0-10000)")
	setUsage(fs, stderr,
		"usage: paystream seed [flags]",
		"inserts demo content, an organization platform agreement and a creator-organization agreement",
		"(both in force from "+seedEffectiveFrom.Format("2006-01-02")+", open ended), so that",
		"`paystream send checkout.session.completed` produces a full purchase, and two monthly subscription plans",
		"(the creator's content, the whole organization's) for `paystream send subscription-lifecycle`. Running it again changes nothing;",
		"rows that exist with other values are reported and left alone (exit 1).",
		"env: DATABASE_URL",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	plan, err := o.plan()
	if err != nil {
		return err
	}
	p := config.NewParser(getenv)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	if err := p.Err(); err != nil {
		return err
	}
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer bdb.Close()
	if err := migrations.Current(ctx, bdb); err != nil {
		return fmt.Errorf("seed: %w (run `paystream migrate` first)", err)
	}
	return seed(ctx, bdb, plan, stdout)
}

// plan validates the flags with messages naming them, before anything
// connects.
func (o seedOptions) plan() (seedPlan, error) {
	contentID, err := uuid.Parse(o.content)
	if err != nil {
		return seedPlan{}, fmt.Errorf("seed: --content %q is not a uuid", o.content)
	}
	orgID, err := uuid.Parse(o.org)
	if err != nil {
		return seedPlan{}, fmt.Errorf("seed: --org %q is not a uuid", o.org)
	}
	s := purchase.NewSeed(model.Content{ID: contentID, CreatorID: o.creator, OrganizationID: orgID,
		PriceCents: o.price, Currency: o.currency, Visibility: "public"}, o.platformBps, o.orgBps)
	if err := s.Validate(); err != nil {
		var fe *purchase.SeedFieldError
		if errors.As(err, &fe) {
			fe.Field = seedFlags[fe.Field]
		}
		return seedPlan{}, fmt.Errorf("seed: %w", err)
	}
	expect, err := split.Compute(o.price, split.Terms{PlatformBps: o.platformBps, OrganizationBps: o.orgBps})
	if err != nil {
		return seedPlan{}, fmt.Errorf("seed: %w", err)
	}
	creator := o.creator
	plans := []model.SubscriptionPlan{
		{ID: uuid.MustParse(demo.CreatorPlanID), OrganizationID: orgID, CreatorID: &creator, Name: demo.CreatorPlanName,
			PriceCents: demo.CreatorPlanPriceCents, Currency: o.currency, Interval: demo.PlanInterval, IntervalCount: 1,
			GraceDays: demo.PlanGraceDays},
		{ID: uuid.MustParse(demo.OrganizationPlanID), OrganizationID: orgID, Name: demo.OrganizationPlanName,
			PriceCents: demo.OrganizationPlanPriceCents, Currency: o.currency, Interval: demo.PlanInterval, IntervalCount: 1,
			GraceDays: demo.PlanGraceDays},
	}
	return seedPlan{Seed: s, expectSplit: expect, plans: plans}, nil
}

// seed makes the planned rows exist in one transaction and prints, per row,
// whether it was created or already there.
func seed(ctx context.Context, bdb *bun.DB, plan seedPlan, w io.Writer) error {
	rows, err := purchase.SeedCatalog(ctx, bdb, plan.Seed)
	if err != nil {
		return err
	}
	plans, err := subscription.SeedPlans(ctx, bdb, plan.plans...)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	created, createdPlans := 0, 0
	for _, r := range rows {
		state := "already present"
		if r.Created {
			state, created = "created", created+1
		}
		fmt.Fprintf(w, "%-16s %s\n", state, r.What)
	}
	for _, p := range plans {
		state := "already present"
		if p.Created {
			state, createdPlans = "created", createdPlans+1
		}
		scope := "the organization's content"
		if p.Plan.CreatorID != nil {
			scope = *p.Plan.CreatorID + "'s content"
		}
		fmt.Fprintf(w, "%-16s subscription plan %s %q: %s, %d %s a %s\n", state, p.Plan.ID, p.Plan.Name, scope,
			p.Plan.PriceCents, p.Plan.Currency, p.Plan.Interval)
	}
	c, s := plan.Content, plan.expectSplit
	fmt.Fprintf(w, "\ncontent %s by %s, organization %s, %d %s\n", c.ID, c.CreatorID, c.OrganizationID, c.PriceCents, c.Currency)
	fmt.Fprintf(w, "agreements in force from %s, open ended: platform %d bps, organization %d bps\n",
		seedEffectiveFrom.Format("2006-01-02"), plan.Platform.PlatformFeePercentage, plan.CreatorOrg.OrganizationFeePercentage)
	fmt.Fprintf(w, "a purchase of %d %s splits into platform %d, organization %d, creator %d\n",
		s.Amount, c.Currency, s.Platform, s.Organization, s.Creator)
	if created+createdPlans == 0 {
		fmt.Fprintln(w, "nothing changed: the demo data was already seeded")
	}
	if created > 0 {
		fmt.Fprintf(w, "inserted %d row(s); now try: paystream send checkout.session.completed\n", created)
	}
	if createdPlans > 0 {
		fmt.Fprintf(w, "inserted %d subscription plan(s); now try: paystream send subscription-lifecycle\n", createdPlans)
	}
	return nil
}
