package split_test

import (
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paystream/paystream/internal/split"
)

func TestReversal(t *testing.T) {
	s2999 := split.Split{Amount: 2999, Platform: 300, Organization: 540, Creator: 2159}
	tests := []struct {
		name     string
		s        split.Split
		reversed int64
		want     split.Parts
	}{
		{"nothing reversed", s2999, 0, split.Parts{}},
		{"full refund is every share", s2999, 2999, split.Parts{Platform: 300, Organization: 540, Creator: 2159}},
		// platform ceil(300×1000/2999)=ceil(100.03)=101; rest 899; org ceil(540×899/2699)=ceil(179.86)=180.
		{"a third", s2999, 1000, split.Parts{Platform: 101, Organization: 180, Creator: 719}},
		{"one cent goes to the platform first", s2999, 1, split.Parts{Platform: 1}},
		{"two cents: platform, then organization", s2999, 2, split.Parts{Platform: 1, Organization: 1}},
		{"no fees: all the creator's", split.Split{Amount: 500, Creator: 500}, 123, split.Parts{Creator: 123}},
		{"platform takes all", split.Split{Amount: 500, Platform: 500}, 123, split.Parts{Platform: 123}},
		{"zero purchase", split.Split{}, 0, split.Parts{}},
		{"max amount", split.Split{Amount: split.MaxAmount, Platform: split.MaxAmount - 2, Organization: 1, Creator: 1},
			split.MaxAmount - 1, split.Parts{Platform: split.MaxAmount - 2, Organization: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := split.Reversal(tt.s, tt.reversed)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Reversal(%+v, %d) = %+v, want %+v", tt.s, tt.reversed, got, tt.want)
			}
		})
	}
}

func TestReversalRejects(t *testing.T) {
	ok := split.Split{Amount: 100, Platform: 10, Organization: 0, Creator: 90}
	tests := []struct {
		name     string
		s        split.Split
		reversed int64
	}{
		{"more than the amount", ok, 101},
		{"negative", ok, -1},
		{"shares do not sum", split.Split{Amount: 100, Platform: 10, Creator: 89}, 1},
		{"negative share", split.Split{Amount: 100, Platform: -1, Creator: 101}, 1},
		{"amount over bound", split.Split{Amount: split.MaxAmount + 1, Creator: split.MaxAmount + 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := split.Reversal(tt.s, tt.reversed); err == nil {
				t.Fatalf("Reversal(%+v, %d) = %+v, want error", tt.s, tt.reversed, p)
			}
		})
	}
}

// randomSplit draws a split: mostly Compute's (what purchases hold), some
// arbitrary shares (the rule must hold for any snapshot), some degenerate.
func randomSplit(rng *rand.Rand, i int) split.Split {
	var amount int64
	switch i % 4 {
	case 0:
		amount = rng.Int64N(100) // tiny: rounding dominates
	case 1:
		amount = rng.Int64N(split.MaxAmount + 1)
	default:
		amount = rng.Int64N(1_000_000)
	}
	if i%5 == 0 {
		s, err := split.Compute(amount, split.Terms{PlatformBps: rng.IntN(split.MaxBps + 1), OrganizationBps: rng.IntN(split.MaxBps + 1)})
		if err != nil {
			panic(err)
		}
		return s
	}
	cut1, cut2 := rng.Int64N(amount+1), rng.Int64N(amount+1)
	if cut1 > cut2 {
		cut1, cut2 = cut2, cut1
	}
	parts := []int64{cut1, cut2 - cut1, amount - cut2}
	if i%7 == 0 {
		parts[rng.IntN(3)] = 0
		parts[rng.IntN(3)] += amount - (parts[0] + parts[1] + parts[2])
	}
	return split.Split{Amount: amount, Platform: parts[0], Organization: parts[1], Creator: parts[2]}
}

// Property, over many random splits and random series of partial refunds
// given as cumulative totals: the parts sum exactly to the total; each part
// lies in [0, its share]; no party's part ever shrinks as the total grows
// (so each refund's own parts, the difference of two cumulative results,
// are never negative and also sum exactly to the refund); at a full refund
// every part is exactly its share; the creator never gives back more than
// its exact proportion and each fee's reversal is its exact proportion
// rounded up.
func TestReversalProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(20261207, 2))
	for i := range 50_000 {
		s := randomSplit(rng, i)
		totals := []int64{0, s.Amount}
		for range rng.IntN(6) {
			totals = append(totals, rng.Int64N(s.Amount+1))
		}
		if s.Amount > 0 && s.Amount < 60 {
			for x := range s.Amount {
				totals = append(totals, x)
			}
		}
		slices.Sort(totals)
		prev := split.Parts{}
		var prevTotal int64
		for _, x := range totals {
			p, err := split.Reversal(s, x)
			if err != nil {
				t.Fatalf("Reversal(%+v, %d): %v", s, x, err)
			}
			if p.Sum() != x {
				t.Fatalf("Reversal(%+v, %d) = %+v sums to %d", s, x, p, p.Sum())
			}
			sh := s.Shares()
			if p.Platform < 0 || p.Organization < 0 || p.Creator < 0 ||
				p.Platform > sh.Platform || p.Organization > sh.Organization || p.Creator > sh.Creator {
				t.Fatalf("Reversal(%+v, %d) = %+v outside [0, share]", s, x, p)
			}
			d := p.Sub(prev)
			if d.Platform < 0 || d.Organization < 0 || d.Creator < 0 || d.Sum() != x-prevTotal {
				t.Fatalf("refund %d→%d of %+v: parts %+v (a party would be credited, or parts do not sum)", prevTotal, x, s, d)
			}
			if x == s.Amount && p != sh {
				t.Fatalf("full refund of %+v = %+v, want the shares", s, p)
			}
			if s.Amount > 0 {
				if !ceilOf(p.Platform, sh.Platform, x, s.Amount) {
					t.Fatalf("Reversal(%+v, %d): platform %d is not ceil(%d×%d/%d)", s, x, p.Platform, sh.Platform, x, s.Amount)
				}
				// creator × amount ≤ creator share × reversed, in exact integers.
				lhs := new(big.Int).Mul(big.NewInt(p.Creator), big.NewInt(s.Amount))
				rhs := new(big.Int).Mul(big.NewInt(sh.Creator), big.NewInt(x))
				if lhs.Cmp(rhs) > 0 {
					t.Fatalf("Reversal(%+v, %d): creator gives back %d, more than its exact proportion", s, x, p.Creator)
				}
			}
			prev, prevTotal = p, x
		}
	}
}

// ceilOf reports whether got = ceil(share × x / amount), in exact integers.
func ceilOf(got, share, x, amount int64) bool {
	num := new(big.Int).Mul(big.NewInt(share), big.NewInt(x))
	a := big.NewInt(amount)
	hi := new(big.Int).Mul(big.NewInt(got), a)   // got × amount ≥ share × x
	lo := new(big.Int).Mul(big.NewInt(got-1), a) // (got − 1) × amount < share × x
	return hi.Cmp(num) >= 0 && (got == 0 || lo.Cmp(num) < 0)
}
