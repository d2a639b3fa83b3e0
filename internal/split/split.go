// Package split computes the revenue split of a purchase: the platform fee,
// the organization fee and the creator payout, in integer minor units. The
// arithmetic is a pure function; TermsAt looks up the agreements in force.
package split

import (
	"fmt"

	"github.com/google/uuid"
)

// DefaultPlatformBps is the platform fee when neither an organization
// agreement nor a platform config is in force: 10 %.
const DefaultPlatformBps = 1000

// MaxBps is 100 % in basis points.
const MaxBps = 10000

// MaxAmount is the largest amount Compute accepts: 10^12 minor units (ten
// billion dollars). amount × bps then stays below 10^16, far inside int64
// (9.2 × 10^18), so the arithmetic is exact without big integers. Stripe's own
// per-charge limit is eight digits, so the bound is never reached by real data.
const MaxAmount int64 = 1_000_000_000_000

// Terms are the rates in force for one purchase and where they came from.
// A nil id means the default was used.
type Terms struct {
	PlatformBps           int
	OrganizationBps       int
	PlatformAgreementID   *uuid.UUID // organization_platform_agreements.id
	PlatformFeeConfigID   *uuid.UUID // platform_fee_config.id, set only when no organization agreement applied
	CreatorOrgAgreementID *uuid.UUID // creator_organization_agreements.id
}

// Split is the immutable snapshot stored on a purchase.
type Split struct {
	Amount       int64
	Platform     int64
	Organization int64
	Creator      int64
	Terms
}

// Compute splits amount under t:
//
//	platform     = ceil(amount × platform bps / 10000)
//	organization = ceil((amount − platform) × organization bps / 10000)
//	creator      = amount − platform − organization
//
// Rounding up favours the platform and the organization by at most one minor
// unit each; the creator gets the exact remainder, so the parts always sum to
// the amount and none is negative.
func Compute(amount int64, t Terms) (Split, error) {
	if amount < 0 || amount > MaxAmount {
		return Split{}, fmt.Errorf("split: amount %d outside [0, %d]", amount, MaxAmount)
	}
	if t.PlatformBps < 0 || t.PlatformBps > MaxBps {
		return Split{}, fmt.Errorf("split: platform rate %d bps outside [0, %d]", t.PlatformBps, MaxBps)
	}
	if t.OrganizationBps < 0 || t.OrganizationBps > MaxBps {
		return Split{}, fmt.Errorf("split: organization rate %d bps outside [0, %d]", t.OrganizationBps, MaxBps)
	}
	platform := ceilBps(amount, t.PlatformBps)
	org := ceilBps(amount-platform, t.OrganizationBps)
	return Split{
		Amount:       amount,
		Platform:     platform,
		Organization: org,
		Creator:      amount - platform - org,
		Terms:        t,
	}, nil
}

// ceilBps returns ceil(amount × bps / 10000) for amount in [0, MaxAmount] and
// bps in [0, MaxBps]; the product fits in int64 (see MaxAmount).
func ceilBps(amount int64, bps int) int64 {
	p := amount * int64(bps)
	return (p + MaxBps - 1) / MaxBps
}
