// Package ledger is paystream's double-entry ledger: who is owed what, from
// each purchase's split to the payee's bank, every cent accounted for.
//
// A Transaction is a set of signed entries on accounts that sums to zero per
// currency, named by an idempotency key its cause determines. The posting
// rules (PurchaseCompleted, Release, Refund, DisputeOpened, DisputeWon,
// DisputeLost, PayoutCreated, PayoutPaid, PayoutFailed, TransferReversed) are
// pure functions that build transactions; Post and PostMany write them inside
// the caller's database transaction, with the accounts locked in one global
// order; Verify checks the invariants. docs/ledger.md has the model.
package ledger

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/paystream/paystream/model"
)

// Kind is what an account holds.
type Kind string

// Kinds of a payee's accounts: the life of its money up to its bank.
const (
	Pending   Kind = "pending"    // earned, within the hold
	Available Kind = "available"  // released: the next payout takes it
	Disputed  Kind = "disputed"   // held while a dispute is open
	InTransit Kind = "in_transit" // in a payout not yet settled
	PaidOut   Kind = "paid_out"   // transferred to the payee's Stripe account (cumulative)
)

// Kinds only the platform has. The platform also has Pending and Disputed.
const (
	Revenue Kind = "revenue" // the platform's released fees: its Available
	// StripeClearing is the counterpart of money arriving at and leaving the
	// platform's Stripe balance through sales, refunds and lost disputes: its
	// balance is minus what those flows left at Stripe.
	StripeClearing Kind = "stripe_clearing"
)

// PlatformOwner is the owner of the platform's accounts.
const PlatformOwner = "platform"

// CreatorOwner returns the owner of a creator's accounts.
func CreatorOwner(creatorID string) string { return model.PayeeCreator + ":" + creatorID }

// OrganizationOwner returns the owner of an organization's accounts.
func OrganizationOwner(id uuid.UUID) string { return model.PayeeOrganization + ":" + id.String() }

// PayeeOwner returns the owner of a payee's accounts from its kind
// (model.PayeeCreator or model.PayeeOrganization) and id.
func PayeeOwner(kind, id string) (string, error) {
	owner := kind + ":" + id
	if kind != model.PayeeCreator && kind != model.PayeeOrganization {
		return "", fmt.Errorf("ledger: payee kind %q is neither %s nor %s", kind, model.PayeeCreator, model.PayeeOrganization)
	}
	if err := validOwner(owner); err != nil {
		return "", err
	}
	return owner, nil
}

// Account names one ledger account. Accounts are created on first use.
type Account struct {
	Owner    string
	Currency string
	Kind     Kind
}

// String returns "owner/currency/kind".
func (a Account) String() string { return a.Owner + "/" + a.Currency + "/" + string(a.Kind) }

// compareAccounts is the global lock order of accounts: by owner, currency
// and kind, as bytes. Every posting locks its accounts in this order, so
// two postings never wait for each other in a cycle. "platform" sorts after
// "creator:…" and "organization:…", so the platform's accounts, which every
// sale touches, are locked last and held for the shortest time.
func compareAccounts(a, b Account) int {
	return cmp.Or(strings.Compare(a.Owner, b.Owner), strings.Compare(a.Currency, b.Currency), strings.Compare(string(a.Kind), string(b.Kind)))
}

var (
	currencyRE = regexp.MustCompile(`^[a-z]{3}$`)
	orgOwnerRE = regexp.MustCompile(`^organization:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// validOwner mirrors ledger_accounts_owner_format, so a bad owner fails in
// Go with its name rather than as a CHECK violation.
func validOwner(owner string) error {
	switch {
	case owner == PlatformOwner:
	case strings.HasPrefix(owner, model.PayeeCreator+":") && len(owner) > len(model.PayeeCreator)+1:
	case orgOwnerRE.MatchString(owner):
	default:
		return fmt.Errorf("ledger: owner %q is not platform, creator:<id> or organization:<uuid>", owner)
	}
	return nil
}

// validate mirrors the CHECKs of ledger_accounts.
func (a Account) validate() error {
	if err := validOwner(a.Owner); err != nil {
		return err
	}
	if !currencyRE.MatchString(a.Currency) {
		return fmt.Errorf("ledger: account %s: currency is not three lower-case letters", a)
	}
	ok := false
	if a.Owner == PlatformOwner {
		ok = a.Kind == Pending || a.Kind == Revenue || a.Kind == Disputed || a.Kind == StripeClearing
	} else {
		ok = a.Kind == Pending || a.Kind == Available || a.Kind == Disputed || a.Kind == InTransit || a.Kind == PaidOut
	}
	if !ok {
		return fmt.Errorf("ledger: account %s: no such kind for this owner", a)
	}
	return nil
}
