package purchase_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

func validSeed() purchase.Seed {
	return purchase.NewSeed(model.Content{ID: uuid.New(), CreatorID: "creator_1", OrganizationID: uuid.New(),
		PriceCents: 1999, Currency: "usd", Visibility: "public"}, 1000, 500)
}

func TestSeedValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*purchase.Seed)
		field string
		msg   string
	}{
		{"valid", func(*purchase.Seed) {}, "", ""},
		{"free content", func(s *purchase.Seed) { s.Content.PriceCents = 0 }, "", ""},
		{"full rates", func(s *purchase.Seed) {
			s.Platform.PlatformFeePercentage, s.CreatorOrg.OrganizationFeePercentage = 10000, 10000
		}, "", ""},
		{"blank creator", func(s *purchase.Seed) { s.Content.CreatorID = " " }, purchase.SeedCreator, "creator_id must not be empty"},
		{"upper-case currency", func(s *purchase.Seed) { s.Content.Currency = "USD" }, purchase.SeedCurrency,
			`currency "USD" must be three lower-case letters (e.g. usd)`},
		{"long currency", func(s *purchase.Seed) { s.Content.Currency = "usdt" }, purchase.SeedCurrency,
			`currency "usdt" must be three lower-case letters (e.g. usd)`},
		{"negative price", func(s *purchase.Seed) { s.Content.PriceCents = -1 }, purchase.SeedPrice,
			"price_cents -1 outside [0, 1000000000000]"},
		{"price over the split's limit", func(s *purchase.Seed) { s.Content.PriceCents = 1_000_000_000_001 }, purchase.SeedPrice,
			"price_cents 1000000000001 outside [0, 1000000000000]"},
		{"platform rate over 100%", func(s *purchase.Seed) { s.Platform.PlatformFeePercentage = 10001 }, purchase.SeedPlatformBps,
			"platform_fee_percentage 10001 outside [0, 10000]"},
		{"negative organization rate", func(s *purchase.Seed) { s.CreatorOrg.OrganizationFeePercentage = -5 }, purchase.SeedOrgBps,
			"organization_fee_percentage -5 outside [0, 10000]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSeed()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *purchase.SeedFieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || err.Error() != tt.msg {
				t.Fatalf("Validate = %v, want %s: %q", err, tt.field, tt.msg)
			}
		})
	}
}

func TestSeedCatalogRefusesAnInvalidSeed(t *testing.T) {
	bdb, _ := testenv.DB(t)
	s := validSeed()
	s.Content.Currency = "EUR"
	var fe *purchase.SeedFieldError
	if _, err := purchase.SeedCatalog(context.Background(), bdb, s); !errors.As(err, &fe) || fe.Field != purchase.SeedCurrency {
		t.Fatalf("SeedCatalog = %v, want a currency SeedFieldError", err)
	}
	if n, err := bdb.NewSelect().Model((*model.Content)(nil)).Where("id = ?", s.Content.ID).Count(context.Background()); err != nil || n != 0 {
		t.Errorf("content rows after a refused seed = %d, %v", n, err)
	}
}
