package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// StripeConfig is the access to the Stripe API, the same settings as
// internal/stripeclient's: STRIPE_SECRET_KEY, STRIPE_API_BASE,
// STRIPE_MAX_NETWORK_RETRIES and one attempt's timeout.
type StripeConfig struct {
	Key               string        // sk_… or rk_… with write access to Transfers (and Accounts for onboarding)
	APIBase           string        // default stripeclient.DefaultAPIBase
	MaxNetworkRetries int           // stripe-go's own retries, with the same idempotency key
	Timeout           time.Duration // one HTTP attempt; default 30s
	HTTPClient        *http.Client  // nil: a client with Timeout; tests reach fakes through it
}

// defaultStripeTimeout bounds one HTTP attempt to Stripe.
const defaultStripeTimeout = 30 * time.Second

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

// NewStripe returns the Stripe client of cfg. stripe-go retries a request
// that got no answer, a 409 and an answer marked Stripe-Should-Retry up to
// MaxNetworkRetries times with the same Idempotency-Key, which is exactly
// the engine's rule for "no answer": the same key again.
func NewStripe(cfg StripeConfig, log *slog.Logger) (*StripeAPI, error) {
	if cfg.APIBase == "" {
		cfg.APIBase = stripeclient.DefaultAPIBase
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultStripeTimeout
	}
	if cfg.Key == "" {
		return nil, errors.New("payout: STRIPE_SECRET_KEY is required")
	}
	if u, err := url.Parse(cfg.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("payout: STRIPE_API_BASE %q must be an http(s) URL", cfg.APIBase)
	}
	if cfg.MaxNetworkRetries < 0 || cfg.MaxNetworkRetries > stripeclient.MaxNetworkRetries {
		return nil, fmt.Errorf("payout: STRIPE_MAX_NETWORK_RETRIES must be between 0 and %d", stripeclient.MaxNetworkRetries)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(cfg.APIBase),
		MaxNetworkRetries: stripe.Int64(int64(cfg.MaxNetworkRetries)),
		HTTPClient:        hc,
		LeveledLogger:     stripeLogger{log.With("component", "stripe-go")},
		EnableTelemetry:   stripe.Bool(false),
	})
	return &StripeAPI{
		transfers: transfer.Client{B: b, Key: cfg.Key},
		accounts:  account.Client{B: b, Key: cfg.Key},
		links:     accountlink.Client{B: b, Key: cfg.Key},
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

// stripeLogger routes stripe-go's logging into slog: its per-request lines
// at debug, its retry notices at warn; its errors come back to the caller,
// which logs them once with the payout id.
type stripeLogger struct{ log *slog.Logger }

var _ stripe.LeveledLoggerInterface = stripeLogger{}

func (l stripeLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l stripeLogger) Infof(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l stripeLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l stripeLogger) Errorf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
