package ledger

import (
	"fmt"
	"time"

	"github.com/paystream/paystream/model"
)

// The posting rules of a payout: the payee's money moves from available to
// in_transit when the payout is created (in the transaction that inserts the
// payouts row), and on to paid_out when Stripe created the transfer, or back
// to available when the payout failed or was canceled. A reversed transfer
// returns the reversed amount to available, where the next payout takes it.

// PayoutCreated takes a new payout's amount from the payee's available
// balance into in_transit. Posting it fails with ErrOverdraft when the
// balance, read under its lock, is smaller than the amount.
func PayoutCreated(p *model.Payout) (Transaction, error) {
	a, err := payoutAccounts(p)
	if err != nil {
		return Transaction{}, err
	}
	m := moves{}
	m.move(a(Available), a(InTransit), p.AmountCents)
	return Transaction{
		Key: "payout:" + p.ID.String(), Cause: CausePayoutCreated, PayoutID: p.ID,
		Amount: p.AmountCents, EffectiveAt: p.CreatedAt, Entries: m.entries(),
		NoOverdraft: []Account{a(Available)},
	}, nil
}

// PayoutPaid settles a payout whose transfer Stripe created: in_transit to
// paid_out. transferID is the tr_… id.
func PayoutPaid(p *model.Payout, transferID string, at time.Time) (Transaction, error) {
	return settle(p, CausePayoutPaid, PaidOut, transferID, at)
}

// PayoutFailed settles a payout that will never be transferred (failed or
// canceled): its money returns from in_transit to available.
func PayoutFailed(p *model.Payout, at time.Time) (Transaction, error) {
	return settle(p, CausePayoutFailed, Available, "", at)
}

func settle(p *model.Payout, c Cause, to Kind, ref string, at time.Time) (Transaction, error) {
	a, err := payoutAccounts(p)
	if err != nil {
		return Transaction{}, err
	}
	m := moves{}
	m.move(a(InTransit), a(to), p.AmountCents)
	return Transaction{
		Key: "payout:" + p.ID.String() + ":settled", Cause: c, PayoutID: p.ID,
		Amount: p.AmountCents, Reference: ref, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// TransferReversed credits a reversed transfer back to the payee's
// available balance. reversed is the transfer's cumulative amount_reversed
// after the event and p the payouts row before it (its
// AmountReversedCents is what was posted already), so each reversed cent is
// posted once whatever the order of the events.
func TransferReversed(p *model.Payout, reversed int64, reversalID string, at time.Time) (Transaction, error) {
	a, err := payoutAccounts(p)
	if err != nil {
		return Transaction{}, err
	}
	if reversed < 0 || reversed > p.AmountCents {
		return Transaction{}, fmt.Errorf("ledger: payout %s: reversed %d outside [0, %d]", p.ID, reversed, p.AmountCents)
	}
	if reversed <= p.AmountReversedCents {
		return Transaction{}, nil
	}
	m := moves{}
	m.move(a(PaidOut), a(Available), reversed-p.AmountReversedCents)
	return Transaction{
		Key: fmt.Sprintf("payout:%s:reversed:%d", p.ID, reversed), Cause: CauseTransferReversed, PayoutID: p.ID,
		Amount: reversed, Reference: reversalID, EffectiveAt: at, Entries: m.entries(),
	}, nil
}

// payoutAccounts returns the accounts of p's payee in p's currency.
func payoutAccounts(p *model.Payout) (func(Kind) Account, error) {
	owner, err := PayeeOwner(p.PayeeKind, p.PayeeID)
	if err != nil {
		return nil, fmt.Errorf("ledger: payout %s: %w", p.ID, err)
	}
	if p.AmountCents <= 0 {
		return nil, fmt.Errorf("ledger: payout %s: amount %d is not positive", p.ID, p.AmountCents)
	}
	return func(k Kind) Account { return Account{Owner: owner, Currency: p.Currency, Kind: k} }, nil
}
