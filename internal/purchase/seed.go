package purchase

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// This file seeds the catalog the handler reads (content) and the
// agreements the split is taken from: `paystream seed` and the load tool
// call it; it never overwrites a row.

// SeedEffectiveFrom is when seeded agreements start: a fixed date well in
// the past, so every event `paystream send` builds (stamped now) and every
// replay of it falls inside the open-ended window, and so two seeds describe
// the very same rows.
func SeedEffectiveFrom() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// seedLockKey serialises concurrent seeds (two terminals, a script racing a
// human) with a transaction-scoped advisory lock, so check-then-insert cannot
// insert twice or trip the agreements' exclusion constraints.
const seedLockKey int64 = 0x7061797365656400 // "payseed\0"

// Seed is the rows SeedCatalog makes exist: one content row and its
// organization's and creator's agreements.
type Seed struct {
	Content    model.Content
	Platform   model.OrganizationPlatformAgreement
	CreatorOrg model.CreatorOrganizationAgreement
}

// NewSeed returns the Seed of content with open-ended agreements from
// SeedEffectiveFrom at platformBps (organization platform agreement) and
// orgBps (creator–organization agreement).
func NewSeed(content model.Content, platformBps, orgBps int) Seed {
	return Seed{
		Content: content,
		Platform: model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: content.OrganizationID,
			PlatformFeePercentage: platformBps, EffectiveFrom: SeedEffectiveFrom()},
		CreatorOrg: model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: content.CreatorID, OrganizationID: content.OrganizationID,
			OrganizationFeePercentage: orgBps, EffectiveFrom: SeedEffectiveFrom()},
	}
}

// SeedFieldError is a Seed value the schema or the split would refuse.
type SeedFieldError struct {
	Field  string // SeedCreator, SeedCurrency, SeedPrice, SeedPlatformBps or SeedOrgBps
	Value  string // the value as printed, "" when it is empty
	Reason string // what it must be
}

// The fields of a Seed that Validate checks, as SeedFieldError names them.
const (
	SeedCreator     = "creator_id"
	SeedCurrency    = "currency"
	SeedPrice       = "price_cents"
	SeedPlatformBps = "platform_fee_percentage"
	SeedOrgBps      = "organization_fee_percentage"
)

// Error implements error: "<field> <value> <reason>".
func (e *SeedFieldError) Error() string {
	if e.Value == "" {
		return e.Field + " " + e.Reason
	}
	return e.Field + " " + e.Value + " " + e.Reason
}

// Validate checks s against the rules the schema and the split enforce, so
// a caller can refuse bad input before it connects. It returns the first
// problem as a *SeedFieldError.
func (s Seed) Validate() error {
	c := s.Content
	if strings.TrimSpace(c.CreatorID) == "" {
		return &SeedFieldError{Field: SeedCreator, Reason: "must not be empty"}
	}
	if !currencyRe.MatchString(c.Currency) {
		return &SeedFieldError{Field: SeedCurrency, Value: strconv.Quote(c.Currency), Reason: "must be three lower-case letters (e.g. usd)"}
	}
	if c.PriceCents < 0 || c.PriceCents > split.MaxAmount {
		return &SeedFieldError{Field: SeedPrice, Value: strconv.FormatInt(c.PriceCents, 10), Reason: fmt.Sprintf("outside [0, %d]", split.MaxAmount)}
	}
	for _, f := range []struct {
		field string
		bps   int
	}{{SeedPlatformBps, s.Platform.PlatformFeePercentage}, {SeedOrgBps, s.CreatorOrg.OrganizationFeePercentage}} {
		if f.bps < 0 || f.bps > split.MaxBps {
			return &SeedFieldError{Field: f.field, Value: strconv.Itoa(f.bps), Reason: fmt.Sprintf("outside [0, %d]", split.MaxBps)}
		}
	}
	return nil
}

// SeedConflict is a row that exists with other values than the seed wants.
// Seeding never overwrites: the database may hold real catalog data or
// agreements.
type SeedConflict struct{ What string }

// Error implements error.
func (c SeedConflict) Error() string { return c.What }

// SeededRow is one row of a Seed: what it is, its id, and whether
// SeedCatalog created it or found it already there.
type SeededRow struct {
	What    string // e.g. "content 0000…c0de"
	Created bool
}

// SeedCatalog makes the rows of s exist in one transaction and reports, per
// row, whether it was created or already present. An s that fails Validate
// changes nothing.
func SeedCatalog(ctx context.Context, bdb *bun.DB, s Seed) ([]SeededRow, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	var rows []SeededRow
	err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rows = rows[:0]
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", seedLockKey); err != nil {
			return fmt.Errorf("seed: take lock: %w", err)
		}
		isNew, err := seedContent(ctx, tx, s.Content)
		if err != nil {
			return err
		}
		rows = append(rows, SeededRow{What: fmt.Sprintf("content %s", s.Content.ID), Created: isNew})
		isNew, id, err := seedPlatformAgreement(ctx, tx, s.Platform)
		if err != nil {
			return err
		}
		rows = append(rows, SeededRow{What: fmt.Sprintf("platform agreement %s", id), Created: isNew})
		isNew, id, err = seedCreatorAgreement(ctx, tx, s.CreatorOrg)
		if err != nil {
			return err
		}
		rows = append(rows, SeededRow{What: fmt.Sprintf("creator agreement %s", id), Created: isNew})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
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
		return false, SeedConflict{fmt.Sprintf("seed: content %s already exists with %s; seed changes no existing row (pass other flags, or fix the row)",
			want.ID, strings.Join(diffs, ", "))}
	}
	return false, nil
}

// seedPlatformAgreement makes want the organization's agreement from
// SeedEffectiveFrom on. An identical open-ended agreement counts as present;
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
		return false, uuid.Nil, SeedConflict{fmt.Sprintf("seed: organization %s already has platform agreement %s (%d bps, %s); seed changes no existing agreement",
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
		return false, uuid.Nil, SeedConflict{fmt.Sprintf("seed: creator %q already has agreement %s with organization %s (%d bps, %s); seed changes no existing agreement",
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
