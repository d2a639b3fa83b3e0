package split_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

func TestInForce(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.Add(24 * time.Hour)
	tests := []struct {
		name  string
		until *time.Time
		at    time.Time
		want  bool
	}{
		{"before start", &until, from.Add(-time.Nanosecond), false},
		{"at start", &until, from, true},
		{"inside", &until, from.Add(time.Hour), true},
		{"at end is outside", &until, until, false},
		{"open ended far future", nil, from.AddDate(50, 0, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := split.InForce(from, tt.until, tt.at); got != tt.want {
				t.Errorf("InForce = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTermsAt(t *testing.T) {
	ctx := context.Background()
	bdb, _ := testenv.DB(t)
	org, otherOrg := uuid.New(), uuid.New()
	const creator = "creator_1"
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb, mar, apr := jan.AddDate(0, 1, 0), jan.AddDate(0, 2, 0), jan.AddDate(0, 3, 0)

	cfg := model.PlatformFeeConfig{ID: uuid.New(), PlatformFeePercentage: 800, EffectiveFrom: feb}
	orgAg := model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: org, PlatformFeePercentage: 500,
		EffectiveFrom: mar, EffectiveUntil: &apr}
	coAg := model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: creator, OrganizationID: org,
		OrganizationFeePercentage: 2000, EffectiveFrom: feb, EffectiveUntil: &mar}
	mustInsert(t, bdb, &cfg, &orgAg, &coAg)
	// One content item of creator per organization, the second one deleted:
	// ContentTermsAt must find it all the same and give TermsAt's answer.
	del := jan
	contents := map[uuid.UUID]uuid.UUID{org: uuid.New(), otherOrg: uuid.New()}
	mustInsert(t, bdb,
		&model.Content{ID: contents[org], CreatorID: creator, OrganizationID: org, PriceCents: 2999, Currency: "usd", Visibility: "public"},
		&model.Content{ID: contents[otherOrg], CreatorID: creator, OrganizationID: otherOrg, PriceCents: 2999, Currency: "usd",
			Visibility: "public", DeletedAt: &del})

	tests := []struct {
		name     string
		org      uuid.UUID
		at       time.Time
		want     split.Terms
		platform int64 // of 2999
	}{
		{"nothing in force: 10% default", org, jan, split.Terms{PlatformBps: 1000}, 300},
		{"platform config and creator agreement", org, feb,
			split.Terms{PlatformBps: 800, OrganizationBps: 2000, PlatformFeeConfigID: &cfg.ID, CreatorOrgAgreementID: &coAg.ID}, 240},
		{"org agreement overrides config; creator agreement expired", org, mar,
			split.Terms{PlatformBps: 500, PlatformAgreementID: &orgAg.ID}, 150},
		{"org agreement ended: config again", org, apr, split.Terms{PlatformBps: 800, PlatformFeeConfigID: &cfg.ID}, 240},
		{"other organization only gets the config", otherOrg, mar, split.Terms{PlatformBps: 800, PlatformFeeConfigID: &cfg.ID}, 240},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split.TermsAt(ctx, bdb, tt.org, creator, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if got.PlatformBps != tt.want.PlatformBps || got.OrganizationBps != tt.want.OrganizationBps ||
				!sameID(got.PlatformAgreementID, tt.want.PlatformAgreementID) ||
				!sameID(got.PlatformFeeConfigID, tt.want.PlatformFeeConfigID) ||
				!sameID(got.CreatorOrgAgreementID, tt.want.CreatorOrgAgreementID) {
				t.Errorf("TermsAt = %+v, want %+v", got, tt.want)
			}
			c, ct, err := split.ContentTermsAt(ctx, bdb, contents[tt.org], tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != contents[tt.org] || c.CreatorID != creator || c.OrganizationID != tt.org ||
				(c.DeletedAt != nil) != (tt.org == otherOrg) {
				t.Errorf("ContentTermsAt content = %+v, want %s of %s by %s", c, contents[tt.org], tt.org, creator)
			}
			if !sameTerms(ct, got) {
				t.Errorf("ContentTermsAt terms = %+v, TermsAt = %+v", ct, got)
			}
			s, err := split.SplitAt(ctx, bdb, tt.org, creator, 2999, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if s.Platform != tt.platform {
				t.Errorf("platform fee of 2999 = %d, want %d", s.Platform, tt.platform)
			}
		})
	}
	// ContentTermsAtMany answers every row of the table in one statement,
	// in the order asked, with a missing content in the middle.
	var keys []split.ContentAt
	for i, tt := range tests {
		keys = append(keys, split.ContentAt{ContentID: contents[tt.org], At: tt.at})
		if i == 1 {
			keys = append(keys, split.ContentAt{ContentID: uuid.New(), At: tt.at})
		}
	}
	many, err := split.ContentTermsAtMany(ctx, bdb, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(many) != len(keys) {
		t.Fatalf("ContentTermsAtMany: %d answers for %d keys", len(many), len(keys))
	}
	for i, k := range keys {
		want, wantTerms, werr := split.ContentTermsAt(ctx, bdb, k.ContentID, k.At)
		got := many[i]
		switch {
		case werr != nil && got.Found:
			t.Errorf("key %d (missing content): found %+v", i, got)
		case werr == nil && (!got.Found || got.Content.ID != want.ID || got.Content.OrganizationID != want.OrganizationID ||
			(got.Content.DeletedAt != nil) != (want.DeletedAt != nil) || !sameTerms(got.Terms, wantTerms)):
			t.Errorf("key %d: ContentTermsAtMany = %+v, ContentTermsAt = %+v %+v", i, got, want, wantTerms)
		}
	}
}

// The schema refuses overlapping windows for one party, which is what makes
// "the agreement in force" unique.
func TestOverlappingAgreementsRejected(t *testing.T) {
	bdb, _ := testenv.DB(t)
	org := uuid.New()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mustInsert(t, bdb, &model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: org, PlatformFeePercentage: 500, EffectiveFrom: from})
	_, err := bdb.NewInsert().Model(&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: org,
		PlatformFeePercentage: 600, EffectiveFrom: from.AddDate(0, 1, 0)}).Exec(context.Background())
	if err == nil {
		t.Fatal("overlapping agreement accepted")
	}
	// Adjacent windows are fine: [jan, feb) and [feb, …).
	feb := from.AddDate(0, 1, 0)
	other := uuid.New()
	mustInsert(t, bdb,
		&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: other, PlatformFeePercentage: 500, EffectiveFrom: from, EffectiveUntil: &feb},
		&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: other, PlatformFeePercentage: 600, EffectiveFrom: feb})
}

func mustInsert(t *testing.T, idb bun.IDB, models ...any) {
	t.Helper()
	for _, m := range models {
		if _, err := idb.NewInsert().Model(m).Exec(context.Background()); err != nil {
			t.Fatalf("insert %T: %v", m, err)
		}
	}
}

func sameTerms(a, b split.Terms) bool {
	return a.PlatformBps == b.PlatformBps && a.OrganizationBps == b.OrganizationBps &&
		sameID(a.PlatformAgreementID, b.PlatformAgreementID) && sameID(a.PlatformFeeConfigID, b.PlatformFeeConfigID) &&
		sameID(a.CreatorOrgAgreementID, b.CreatorOrgAgreementID)
}

func TestContentTermsAtMissingContent(t *testing.T) {
	bdb, _ := testenv.DB(t)
	_, _, err := split.ContentTermsAt(context.Background(), bdb, uuid.New(), time.Now())
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("ContentTermsAt of a missing content: err = %v, want sql.ErrNoRows", err)
	}
}

func sameID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
