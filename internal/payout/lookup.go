package payout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// Look-ups for the dev tools (`paystream send account.updated --payee`,
// `send transfer.reversed --payout`), which build the webhooks Stripe would
// send about what paystream recorded.

// ErrNoAccount is a payee that has no Stripe account yet (not onboarded).
var ErrNoAccount = errors.New("payout: the payee has no Stripe account yet; onboard it first")

// AccountOfPayee returns the Stripe account of the payee ref.
func AccountOfPayee(ctx context.Context, db bun.IDB, ref PayeeRef) (string, error) {
	var acct *string
	err := db.NewSelect().Model((*model.Payee)(nil)).Column("stripe_account_id").
		Where("kind = ? AND id = ?", ref.Kind, ref.ID).Scan(ctx, &acct)
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && acct == nil:
		return "", fmt.Errorf("%s: %w", ref, ErrNoAccount)
	case err != nil:
		return "", fmt.Errorf("payout: read the account of %s: %w", ref, err)
	}
	return *acct, nil
}

// PaidTransfer is a paid payout's transfer as Stripe reports it.
type PaidTransfer struct {
	Transfer
	PayoutID uuid.UUID
}

// ErrNotPaid is a payout without a transfer (not paid).
var ErrNotPaid = errors.New("payout: the payout is not paid: it has no transfer to reverse")

// TransferOfPayout returns the transfer of the paid payout id: its id,
// amount, cumulative reversed amount, currency, group and destination.
func TransferOfPayout(ctx context.Context, db bun.IDB, id uuid.UUID) (PaidTransfer, error) {
	var p model.Payout
	if err := db.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx); err != nil {
		return PaidTransfer{}, fmt.Errorf("payout: read payout %s: %w", id, err)
	}
	if p.Status != model.PayoutPaid || p.StripeTransferID == nil {
		return PaidTransfer{}, fmt.Errorf("%s is %s: %w", id, p.Status, ErrNotPaid)
	}
	acct, err := AccountOfPayee(ctx, db, PayeeRef{Kind: p.PayeeKind, ID: p.PayeeID})
	if err != nil {
		return PaidTransfer{}, err
	}
	return PaidTransfer{PayoutID: p.ID, Transfer: Transfer{ID: *p.StripeTransferID, Amount: p.AmountCents,
		AmountReversed: p.AmountReversedCents, Currency: p.Currency, Destination: acct, TransferGroup: p.TransferGroup}}, nil
}
