package ledger

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// Sale is what the posting rules need of a purchase: its split snapshot and
// who the parties are.
type Sale struct {
	PurchaseID     uuid.UUID
	Currency       string
	Split          split.Split // Amount and the three shares (Terms unused)
	OrganizationID uuid.UUID
	CreatorID      string // purchases.creator_id: the content's creator when the purchase was paid
	PurchasedAt    time.Time
}

// SaleOf returns the sale of a paid purchase. Its creator is the purchase's
// creator_id snapshot, so every posting of the purchase names the creator
// who sold it, whatever happens to the content later.
func SaleOf(p *model.Purchase) (Sale, error) {
	if p.PurchasedAt == nil {
		return Sale{}, fmt.Errorf("ledger: purchase %s has no purchased_at: it is not paid", p.ID)
	}
	s := Sale{
		PurchaseID: p.ID,
		Currency:   p.Currency,
		Split: split.Split{Amount: p.AmountPaidCents, Platform: p.PlatformFeeCents,
			Organization: p.OrganizationFeeCents, Creator: p.CreatorPayoutCents},
		OrganizationID: p.OrganizationID,
		CreatorID:      p.CreatorID,
		PurchasedAt:    *p.PurchasedAt,
	}
	return s, s.validate()
}

func (s Sale) validate() error {
	if s.PurchaseID == uuid.Nil {
		return fmt.Errorf("ledger: sale without purchase id")
	}
	if s.CreatorID == "" {
		return fmt.Errorf("ledger: purchase %s: no creator", s.PurchaseID)
	}
	if !currencyRE.MatchString(s.Currency) {
		return fmt.Errorf("ledger: purchase %s: currency %q is not three lower-case letters", s.PurchaseID, s.Currency)
	}
	if s.PurchasedAt.IsZero() {
		return fmt.Errorf("ledger: purchase %s: no purchased_at", s.PurchaseID)
	}
	// Reversal of nothing validates the snapshot: shares ≥ 0 summing to the amount.
	if _, err := split.Reversal(s.Split, 0); err != nil {
		return fmt.Errorf("ledger: purchase %s: %w", s.PurchaseID, err)
	}
	return nil
}

// party is one of the three parties of a sale.
type party int

const (
	platform party = iota
	organization
	creator
)

var parties = [...]party{platform, organization, creator}

// part returns the party's amount of p.
func (x party) part(p split.Parts) int64 {
	switch x {
	case platform:
		return p.Platform
	case organization:
		return p.Organization
	}
	return p.Creator
}

// add returns p with v added to the party's amount.
func (x party) add(p split.Parts, v int64) split.Parts {
	switch x {
	case platform:
		p.Platform += v
	case organization:
		p.Organization += v
	default:
		p.Creator += v
	}
	return p
}

func (s Sale) owner(x party) string {
	switch x {
	case platform:
		return PlatformOwner
	case organization:
		return OrganizationOwner(s.OrganizationID)
	}
	return CreatorOwner(s.CreatorID)
}

// partyOf returns the party owning owner, or false for an owner that is
// not one of the sale's.
func (s Sale) partyOf(owner string) (party, bool) {
	for _, x := range parties {
		if s.owner(x) == owner {
			return x, true
		}
	}
	return 0, false
}

func (s Sale) account(x party, k Kind) Account {
	return Account{Owner: s.owner(x), Currency: s.Currency, Kind: k}
}

// home is the account where the party's money of this sale lives outside a
// dispute: pending within the hold, then available (revenue for the
// platform).
func (s Sale) home(x party, released bool) Account {
	switch {
	case !released:
		return s.account(x, Pending)
	case x == platform:
		return s.account(x, Revenue)
	}
	return s.account(x, Available)
}

func (s Sale) clearing() Account {
	return Account{Owner: PlatformOwner, Currency: s.Currency, Kind: StripeClearing}
}

// saleRow is a purchase as the rules and the verification read it.
type saleRow struct {
	ID                   uuid.UUID  `bun:"id"`
	Status               string     `bun:"status"`
	Currency             string     `bun:"currency"`
	AmountPaidCents      int64      `bun:"amount_paid_cents"`
	PlatformFeeCents     int64      `bun:"platform_fee_cents"`
	OrganizationFeeCents int64      `bun:"organization_fee_cents"`
	CreatorPayoutCents   int64      `bun:"creator_payout_cents"`
	RefundAmountCents    int64      `bun:"refund_amount_cents"`
	DisputeStatus        string     `bun:"dispute_status,nullzero"`
	OrganizationID       uuid.UUID  `bun:"organization_id"`
	PurchasedAt          *time.Time `bun:"purchased_at"`
	CreatorID            string     `bun:"creator_id"`
}

// saleColumns selects a saleRow from purchases p.
const saleColumns = `p.id, p.status, p.currency, p.amount_paid_cents, p.platform_fee_cents, p.organization_fee_cents,
       p.creator_payout_cents, p.refund_amount_cents, p.dispute_status, p.organization_id, p.purchased_at, p.creator_id`

func (r saleRow) sale() Sale {
	s := Sale{
		PurchaseID: r.ID, Currency: r.Currency, OrganizationID: r.OrganizationID, CreatorID: r.CreatorID,
		Split: split.Split{Amount: r.AmountPaidCents, Platform: r.PlatformFeeCents,
			Organization: r.OrganizationFeeCents, Creator: r.CreatorPayoutCents},
	}
	if r.PurchasedAt != nil {
		s.PurchasedAt = *r.PurchasedAt
	}
	return s
}
