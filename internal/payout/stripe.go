package payout

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/account"
	"github.com/stripe/stripe-go/v76/accountlink"
	"github.com/stripe/stripe-go/v76/transfer"

	"github.com/paystream/paystream/internal/stripeclient"
)

// Transfer is what paystream reads of a Stripe transfer.
type Transfer struct {
	ID             string // tr_…
	Amount         int64
	AmountReversed int64 // cumulative
	Currency       string
	Destination    string // acct_…
	TransferGroup  string
	Created        time.Time
	Metadata       map[string]string
}

// TransferRequest is one transfer to create.
type TransferRequest struct {
	Amount        int64
	Currency      string
	Destination   string
	TransferGroup string
	Description   string
	Metadata      map[string]string
}

// Transfers is the payout engine's view of Stripe's Transfers API.
type Transfers interface {
	// CreateTransfer creates a transfer under an idempotency key; an error
	// is returned as stripe-go returns it, for classify.
	CreateTransfer(ctx context.Context, req TransferRequest, idempotencyKey string) (Transfer, error)
	// TransfersInGroup lists the transfers of a transfer group.
	TransfersInGroup(ctx context.Context, group string) ([]Transfer, error)
	// ListTransfers calls each for every transfer created at or after since,
	// newest first, until each returns an error.
	ListTransfers(ctx context.Context, since time.Time, each func(Transfer) error) error
}

// AccountRequest is one Express account to create for a payee.
type AccountRequest struct {
	PayeeKind, PayeeID string
	Country            string // ISO 3166-1 alpha-2; "" lets Stripe take the platform's
}

// Link is an Account Link: where the payee completes onboarding.
type Link struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Accounts is onboarding's view of Stripe's Connect Accounts API.
type Accounts interface {
	// CreateExpressAccount creates an Express account under an
	// idempotency key and returns its id.
	CreateExpressAccount(ctx context.Context, req AccountRequest, idempotencyKey string) (string, error)
	// CreateAccountLink returns a new onboarding link for the account.
	CreateAccountLink(ctx context.Context, accountID, refreshURL, returnURL string) (Link, error)
}

// StripeAPI implements Transfers and Accounts with stripe-go on a private
// backend (nothing touches stripe-go's package-level key or backends).
type StripeAPI struct {
	transfers transfer.Client
	accounts  account.Client
	links     accountlink.Client
}

var (
	_ Transfers = (*StripeAPI)(nil)
	_ Accounts  = (*StripeAPI)(nil)
)

// NewStripe returns the Stripe client of cfg (stripeclient.New: the one
// backend set-up, with its defaults and bounds). stripe-go retries a request
// that got no answer, a 409 and an answer marked Stripe-Should-Retry up to
// MaxNetworkRetries times with the same Idempotency-Key, which is exactly
// the engine's rule for "no answer": the same key again. The key must be
// allowed to create Transfers (and Accounts and Account Links for
// onboarding).
func NewStripe(cfg stripeclient.Config, log *slog.Logger) (*StripeAPI, error) {
	c, err := stripeclient.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("payout: %w", err)
	}
	return &StripeAPI{
		transfers: transfer.Client{B: c.Backend, Key: c.Key},
		accounts:  account.Client{B: c.Backend, Key: c.Key},
		links:     accountlink.Client{B: c.Backend, Key: c.Key},
	}, nil
}

// CreateTransfer implements Transfers.
func (s *StripeAPI) CreateTransfer(ctx context.Context, req TransferRequest, key string) (Transfer, error) {
	p := &stripe.TransferParams{
		Amount:        stripe.Int64(req.Amount),
		Currency:      stripe.String(req.Currency),
		Destination:   stripe.String(req.Destination),
		TransferGroup: stripe.String(req.TransferGroup),
	}
	if req.Description != "" {
		p.Description = stripe.String(req.Description)
	}
	for k, v := range req.Metadata {
		p.AddMetadata(k, v)
	}
	p.Context = ctx
	p.SetIdempotencyKey(key)
	t, err := s.transfers.New(p)
	if err != nil {
		return Transfer{}, err
	}
	return transferOf(t), nil
}

// TransfersInGroup implements Transfers.
func (s *StripeAPI) TransfersInGroup(ctx context.Context, group string) ([]Transfer, error) {
	p := &stripe.TransferListParams{TransferGroup: stripe.String(group)}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	var out []Transfer
	it := s.transfers.List(p)
	for it.Next() {
		out = append(out, transferOf(it.Transfer()))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list transfers of group %s: %w", group, err)
	}
	return out, nil
}

// ListTransfers implements Transfers.
func (s *StripeAPI) ListTransfers(ctx context.Context, since time.Time, each func(Transfer) error) error {
	p := &stripe.TransferListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := s.transfers.List(p)
	for it.Next() {
		if err := each(transferOf(it.Transfer())); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list transfers created since %s: %w", since.Format(time.RFC3339), err)
	}
	return nil
}

func transferOf(t *stripe.Transfer) Transfer {
	out := Transfer{ID: t.ID, Amount: t.Amount, AmountReversed: t.AmountReversed, Currency: string(t.Currency),
		TransferGroup: t.TransferGroup, Created: time.Unix(t.Created, 0).UTC(), Metadata: t.Metadata}
	if t.Destination != nil {
		out.Destination = t.Destination.ID
	}
	return out
}

// CreateExpressAccount implements Accounts. The account asks for the
// transfers capability (separate charges and transfers pay it) and carries
// the payee in its metadata, so an account.updated names the payee even
// when it arrives before the onboarding committed the account's id.
func (s *StripeAPI) CreateExpressAccount(ctx context.Context, req AccountRequest, key string) (string, error) {
	p := &stripe.AccountParams{
		Type: stripe.String(string(stripe.AccountTypeExpress)),
		Capabilities: &stripe.AccountCapabilitiesParams{
			Transfers: &stripe.AccountCapabilitiesTransfersParams{Requested: stripe.Bool(true)},
		},
	}
	if req.Country != "" {
		p.Country = stripe.String(req.Country)
	}
	p.AddMetadata(MetadataPayeeKind, req.PayeeKind)
	p.AddMetadata(MetadataPayeeID, req.PayeeID)
	p.Context = ctx
	p.SetIdempotencyKey(key)
	a, err := s.accounts.New(p)
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// CreateAccountLink implements Accounts.
func (s *StripeAPI) CreateAccountLink(ctx context.Context, accountID, refreshURL, returnURL string) (Link, error) {
	p := &stripe.AccountLinkParams{
		Account:    stripe.String(accountID),
		RefreshURL: stripe.String(refreshURL),
		ReturnURL:  stripe.String(returnURL),
		Type:       stripe.String(string(stripe.AccountLinkTypeAccountOnboarding)),
	}
	p.Context = ctx
	l, err := s.links.New(p)
	if err != nil {
		return Link{}, err
	}
	return Link{URL: l.URL, ExpiresAt: time.Unix(l.ExpiresAt, 0).UTC()}, nil
}
