package split

import (
	"fmt"
	"math/bits"
)

// Parts are amounts attributed to the three parties of a split.
type Parts struct {
	Platform     int64
	Organization int64
	Creator      int64
}

// Sum returns the three parts added up.
func (p Parts) Sum() int64 { return p.Platform + p.Organization + p.Creator }

// Sub returns p − q, part by part.
func (p Parts) Sub(q Parts) Parts {
	return Parts{Platform: p.Platform - q.Platform, Organization: p.Organization - q.Organization, Creator: p.Creator - q.Creator}
}

// Shares returns the split's three shares as Parts.
func (s Split) Shares() Parts {
	return Parts{Platform: s.Platform, Organization: s.Organization, Creator: s.Creator}
}

// Reversal returns how much of each party's share the first `reversed` minor
// units given back to the buyer (refunds and lost disputes, cumulative) take:
//
//	platform     = ceil(platform share × reversed / amount)
//	rest         = reversed − platform
//	organization = ceil(organization share × rest / (organization + creator shares))
//	creator      = rest − organization
//
// The parts sum to exactly `reversed`. Each is non-decreasing in `reversed`
// and lies in [0, its share], reaching the share at reversed = amount, so a
// series of partial refunds computed from their cumulative total never
// drifts: the reversal of one refund is Reversal(after) − Reversal(before),
// never negative for any party. Rounding the fees' reversal up mirrors
// Compute, which rounds fees up: the creator never gives back more than its
// exact proportion of a refund.
func Reversal(s Split, reversed int64) (Parts, error) {
	if s.Amount < 0 || s.Amount > MaxAmount {
		return Parts{}, fmt.Errorf("split: amount %d outside [0, %d]", s.Amount, MaxAmount)
	}
	if s.Platform < 0 || s.Organization < 0 || s.Creator < 0 || s.Platform+s.Organization+s.Creator != s.Amount {
		return Parts{}, fmt.Errorf("split: shares %d/%d/%d are not a split of %d", s.Platform, s.Organization, s.Creator, s.Amount)
	}
	if reversed < 0 || reversed > s.Amount {
		return Parts{}, fmt.Errorf("split: reversal %d outside [0, %d]", reversed, s.Amount)
	}
	if reversed == 0 {
		return Parts{}, nil
	}
	platform := mulDivCeil(s.Platform, reversed, s.Amount)
	rest := reversed - platform
	var org int64
	if payees := s.Organization + s.Creator; payees > 0 {
		org = mulDivCeil(s.Organization, rest, payees)
	}
	return Parts{Platform: platform, Organization: org, Creator: rest - org}, nil
}

// mulDivCeil returns ceil(a × b / c) for a, b in [0, MaxAmount] and c > 0
// with a × b / c ≤ MaxAmount. The product may exceed int64 (10^24), so it is
// formed in 128 bits.
func mulDivCeil(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	lo, carry := bits.Add64(lo, uint64(c-1), 0)
	hi += carry
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}
