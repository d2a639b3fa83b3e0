package split_test

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/split"
)

func TestCompute(t *testing.T) {
	tests := []struct {
		name                   string
		amount                 int64
		platformBps, orgBps    int
		platform, org, creator int64
	}{
		{"design example 2999 at 10%", 2999, 1000, 0, 300, 0, 2699},
		{"org agreement rate 5%", 2999, 500, 0, 150, 0, 2849},
		{"creator-org cut of the remainder", 2999, 1000, 2000, 300, 540, 2159}, // ceil(2699×0.2)=ceil(539.8)
		{"zero amount", 0, 1000, 2000, 0, 0, 0},
		{"one cent rounds fees up", 1, 1000, 2000, 1, 0, 0},
		{"one cent no platform fee", 1, 0, 2000, 0, 1, 0},
		{"platform 0 bps", 10000, 0, 0, 0, 0, 10000},
		{"platform 10000 bps takes all", 2999, 10000, 5000, 2999, 0, 0},
		{"org 10000 bps takes the remainder", 2999, 1000, 10000, 300, 2699, 0},
		{"exact division", 10000, 1000, 1000, 1000, 900, 8100},
		{"max amount", split.MaxAmount, 9999, 9999, 999_900_000_000, 99_990_000, 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := split.Compute(tt.amount, split.Terms{PlatformBps: tt.platformBps, OrganizationBps: tt.orgBps})
			if err != nil {
				t.Fatal(err)
			}
			if s.Platform != tt.platform || s.Organization != tt.org || s.Creator != tt.creator {
				t.Errorf("Compute(%d, %d, %d) = %d/%d/%d, want %d/%d/%d", tt.amount, tt.platformBps, tt.orgBps,
					s.Platform, s.Organization, s.Creator, tt.platform, tt.org, tt.creator)
			}
			if s.Amount != tt.amount || s.PlatformBps != tt.platformBps || s.OrganizationBps != tt.orgBps {
				t.Errorf("snapshot = %+v", s)
			}
		})
	}
}

func TestComputeRejectsOutOfRange(t *testing.T) {
	tests := []struct {
		name        string
		amount      int64
		platform, o int
	}{
		{"negative amount", -1, 1000, 0},
		{"amount over bound", split.MaxAmount + 1, 1000, 0},
		{"negative platform bps", 100, -1, 0},
		{"platform bps over 100%", 100, 10001, 0},
		{"negative org bps", 100, 0, -1},
		{"org bps over 100%", 100, 0, 10001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := split.Compute(tt.amount, split.Terms{PlatformBps: tt.platform, OrganizationBps: tt.o}); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func TestComputeKeepsAgreementIDs(t *testing.T) {
	a, c := uuid.New(), uuid.New()
	s, err := split.Compute(100, split.Terms{PlatformBps: 1, PlatformAgreementID: &a, CreatorOrgAgreementID: &c})
	if err != nil {
		t.Fatal(err)
	}
	if *s.PlatformAgreementID != a || *s.CreatorOrgAgreementID != c || s.PlatformFeeConfigID != nil {
		t.Errorf("ids = %+v", s.Terms)
	}
}

// Property: for any amount and rates in range the parts sum to the amount,
// none is negative, and each fee is the smallest integer not below its exact
// share (checked against an independent formulation in float-free rationals).
func TestComputeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(20261127, 1))
	edges := []int64{0, 1, 2, 9, 10, 99, 9999, 10000, 10001, split.MaxAmount - 1, split.MaxAmount}
	for i := 0; i < 200_000; i++ {
		var amount int64
		switch {
		case i < len(edges):
			amount = edges[i]
		case i%3 == 0:
			amount = rng.Int64N(split.MaxAmount + 1)
		default:
			amount = rng.Int64N(1_000_000)
		}
		pb, ob := rng.IntN(split.MaxBps+1), rng.IntN(split.MaxBps+1)
		if i%7 == 0 {
			pb = []int{0, split.MaxBps}[i%2]
		}
		s, err := split.Compute(amount, split.Terms{PlatformBps: pb, OrganizationBps: ob})
		if err != nil {
			t.Fatalf("Compute(%d, %d, %d): %v", amount, pb, ob, err)
		}
		if s.Platform < 0 || s.Organization < 0 || s.Creator < 0 {
			t.Fatalf("Compute(%d, %d, %d) has a negative part: %+v", amount, pb, ob, s)
		}
		if s.Platform+s.Organization+s.Creator != amount {
			t.Fatalf("Compute(%d, %d, %d) parts do not sum: %+v", amount, pb, ob, s)
		}
		// ceil: fee×10000 >= share > (fee−1)×10000.
		if !isCeil(s.Platform, amount, pb) || !isCeil(s.Organization, amount-s.Platform, ob) {
			t.Fatalf("Compute(%d, %d, %d) = %+v is not the ceiling split", amount, pb, ob, s)
		}
	}
}

func isCeil(fee, base int64, bps int) bool {
	share := base * int64(bps)
	return fee*split.MaxBps >= share && (fee-1)*split.MaxBps < share
}
