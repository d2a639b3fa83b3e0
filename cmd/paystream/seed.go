package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/migrations"
	"github.com/paystream/paystream/model"
)

// seedEffectiveFrom is when the seeded agreements start: a fixed date well in
// the past, so every event `paystream send` builds (stamped now) and every
// replay of it falls inside the open-ended window, and so two runs of seed
// describe the very same rows.
var seedEffectiveFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// seedLockKey serialises concurrent seeds (two terminals, a script racing a
// human) with a transaction-scoped advisory lock, so check-then-insert cannot
// insert twice or trip the agreements' exclusion constraints.
const seedLockKey int64 = 0x7061797365656400 // "payseed\0"

// currencyPattern is the schema's CHECK on content.currency.
var currencyPattern = regexp.MustCompile(`^[a-z]{3}$`)

// seedOptions are the flags of `paystream seed`.
type seedOptions struct {
	content, org, creator, currency string
	price                           int64
	platformBps, orgBps             int
}

// seedPlan is the validated form of seedOptions: the rows seed wants to exist.
type seedPlan struct {
	content     model.Content
	platform    model.OrganizationPlatformAgreement
	creatorOrg  model.CreatorOrganizationAgreement
	expectSplit split.Split
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
		"`paystream send checkout.session.completed` produces a full purchase. Running it again changes nothing;",
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
	if strings.TrimSpace(o.creator) == "" {
		return seedPlan{}, errors.New("seed: --creator must not be empty")
	}
	if !currencyPattern.MatchString(o.currency) {
		return seedPlan{}, fmt.Errorf("seed: --currency %q must be three lower-case letters (e.g. usd)", o.currency)
	}
	if o.price < 0 || o.price > split.MaxAmount {
		return seedPlan{}, fmt.Errorf("seed: --price %d outside [0, %d]", o.price, split.MaxAmount)
	}
	for _, f := range []struct {
		name string
		bps  int
	}{{"--platform-bps", o.platformBps}, {"--org-bps", o.orgBps}} {
		if f.bps < 0 || f.bps > split.MaxBps {
			return seedPlan{}, fmt.Errorf("seed: %s %d outside [0, %d]", f.name, f.bps, split.MaxBps)
		}
	}
	expect, err := split.Compute(o.price, split.Terms{PlatformBps: o.platformBps, OrganizationBps: o.orgBps})
	if err != nil {
		return seedPlan{}, fmt.Errorf("seed: %w", err)
	}
	return seedPlan{
		content: model.Content{ID: contentID, CreatorID: o.creator, OrganizationID: orgID,
			PriceCents: o.price, Currency: o.currency, Visibility: "public"},
		platform: model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: orgID,
			PlatformFeePercentage: o.platformBps, EffectiveFrom: seedEffectiveFrom},
		creatorOrg: model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: o.creator, OrganizationID: orgID,
			OrganizationFeePercentage: o.orgBps, EffectiveFrom: seedEffectiveFrom},
		expectSplit: expect,
	}, nil
}

// seedConflict is a row that exists with other values than seed wants. Seed
// never overwrites: the database may hold real catalog data or agreements.
type seedConflict struct{ what string }

// Error implements error.
func (c seedConflict) Error() string { return c.what }

// seed makes the planned rows exist in one transaction and prints, per row,
// whether it was created or already there.
func seed(ctx context.Context, bdb *bun.DB, plan seedPlan, w io.Writer) error {
	var lines []string
	created := 0
	report := func(isNew bool, format string, args ...any) {
		state := "already present"
		if isNew {
			state, created = "created", created+1
		}
		lines = append(lines, fmt.Sprintf("%-16s %s", state, fmt.Sprintf(format, args...)))
	}
	err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", seedLockKey); err != nil {
			return fmt.Errorf("seed: take lock: %w", err)
		}
		isNew, err := seedContent(ctx, tx, plan.content)
		if err != nil {
			return err
		}
		report(isNew, "content %s", plan.content.ID)
		isNew, id, err := seedPlatformAgreement(ctx, tx, plan.platform)
		if err != nil {
			return err
		}
		report(isNew, "platform agreement %s", id)
		isNew, id, err = seedCreatorAgreement(ctx, tx, plan.creatorOrg)
		if err != nil {
			return err
		}
		report(isNew, "creator agreement %s", id)
		return nil
	})
	if err != nil {
		return err
	}
	c, s := plan.content, plan.expectSplit
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "\ncontent %s by %s, organization %s, %d %s\n", c.ID, c.CreatorID, c.OrganizationID, c.PriceCents, c.Currency)
	fmt.Fprintf(w, "agreements in force from %s, open ended: platform %d bps, organization %d bps\n",
		seedEffectiveFrom.Format("2006-01-02"), plan.platform.PlatformFeePercentage, plan.creatorOrg.OrganizationFeePercentage)
	fmt.Fprintf(w, "a purchase of %d %s splits into platform %d, organization %d, creator %d\n",
		s.Amount, c.Currency, s.Platform, s.Organization, s.Creator)
	if created == 0 {
		fmt.Fprintln(w, "nothing changed: the demo data was already seeded")
	} else {
		fmt.Fprintf(w, "inserted %d row(s); now try: paystream send checkout.session.completed\n", created)
	}
	return nil
}

// seedContent inserts want unless a content row with its id exists; an
// existing row (even soft-deleted) must match, or seed reports the conflict.
func seedContent(ctx context.Context, tx bun.Tx, want model.Content) (bool, error) {
	var have model.Content
	err := tx.NewSelect().Model(&have).WhereAllWithDeleted().Where("id = ?", want.ID).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.NewInsert().Model(&want).Exec(ctx); err != nil {
			return false, fmt.Errorf("seed: insert content %s: %w", want.ID, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("seed: look up content %s: %w", want.ID, err)
	}
	var diffs []string
	if have.CreatorID != want.CreatorID {
		diffs = append(diffs, fmt.Sprintf("creator %q", have.CreatorID))
	}
	if have.OrganizationID != want.OrganizationID {
		diffs = append(diffs, fmt.Sprintf("organization %s", have.OrganizationID))
	}
	if have.PriceCents != want.PriceCents || have.Currency != want.Currency {
		diffs = append(diffs, fmt.Sprintf("price %d %s", have.PriceCents, have.Currency))
	}
	if have.DeletedAt != nil {
		diffs = append(diffs, "deleted at "+have.DeletedAt.UTC().Format(time.RFC3339))
	}
	if len(diffs) > 0 {
		return false, seedConflict{fmt.Sprintf("seed: content %s already exists with %s; seed changes no existing row (pass other flags, or fix the row)",
			want.ID, strings.Join(diffs, ", "))}
	}
	return false, nil
}

// seedPlatformAgreement makes want the organization's agreement from
// seedEffectiveFrom on. An identical open-ended agreement counts as present;
// any other agreement overlapping the window is a conflict (the schema
// excludes overlaps, and seed will not end someone's agreement).
func seedPlatformAgreement(ctx context.Context, tx bun.Tx, want model.OrganizationPlatformAgreement) (bool, uuid.UUID, error) {
	var have []model.OrganizationPlatformAgreement
	err := tx.NewSelect().Model(&have).
		Where("organization_id = ?", want.OrganizationID).
		Where("(effective_until IS NULL OR effective_until > ?)", want.EffectiveFrom).
		OrderExpr("effective_from").Scan(ctx)
	if err != nil {
		return false, uuid.Nil, fmt.Errorf("seed: look up platform agreements of organization %s: %w", want.OrganizationID, err)
	}
	for _, a := range have {
		if a.EffectiveFrom.Equal(want.EffectiveFrom) && a.EffectiveUntil == nil && a.PlatformFeePercentage == want.PlatformFeePercentage {
			return false, a.ID, nil
		}
	}
	if len(have) > 0 {
		a := have[0]
		return false, uuid.Nil, seedConflict{fmt.Sprintf("seed: organization %s already has platform agreement %s (%d bps, %s); seed changes no existing agreement",
			want.OrganizationID, a.ID, a.PlatformFeePercentage, window(a.EffectiveFrom, a.EffectiveUntil))}
	}
	if _, err := tx.NewInsert().Model(&want).Exec(ctx); err != nil {
		return false, uuid.Nil, fmt.Errorf("seed: insert platform agreement of organization %s: %w", want.OrganizationID, err)
	}
	return true, want.ID, nil
}

// seedCreatorAgreement is seedPlatformAgreement for the creator–organization
// agreement.
func seedCreatorAgreement(ctx context.Context, tx bun.Tx, want model.CreatorOrganizationAgreement) (bool, uuid.UUID, error) {
	var have []model.CreatorOrganizationAgreement
	err := tx.NewSelect().Model(&have).
		Where("creator_id = ?", want.CreatorID).
		Where("organization_id = ?", want.OrganizationID).
		Where("(effective_until IS NULL OR effective_until > ?)", want.EffectiveFrom).
		OrderExpr("effective_from").Scan(ctx)
	if err != nil {
		return false, uuid.Nil, fmt.Errorf("seed: look up agreements of creator %q with organization %s: %w", want.CreatorID, want.OrganizationID, err)
	}
	for _, a := range have {
		if a.EffectiveFrom.Equal(want.EffectiveFrom) && a.EffectiveUntil == nil && a.OrganizationFeePercentage == want.OrganizationFeePercentage {
			return false, a.ID, nil
		}
	}
	if len(have) > 0 {
		a := have[0]
		return false, uuid.Nil, seedConflict{fmt.Sprintf("seed: creator %q already has agreement %s with organization %s (%d bps, %s); seed changes no existing agreement",
			want.CreatorID, a.ID, want.OrganizationID, a.OrganizationFeePercentage, window(a.EffectiveFrom, a.EffectiveUntil))}
	}
	if _, err := tx.NewInsert().Model(&want).Exec(ctx); err != nil {
		return false, uuid.Nil, fmt.Errorf("seed: insert agreement of creator %q with organization %s: %w", want.CreatorID, want.OrganizationID, err)
	}
	return true, want.ID, nil
}

// window renders an agreement window for messages.
func window(from time.Time, until *time.Time) string {
	if until == nil {
		return "from " + from.UTC().Format(time.RFC3339) + ", open ended"
	}
	return "from " + from.UTC().Format(time.RFC3339) + " until " + until.UTC().Format(time.RFC3339)
}
