package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// OnboardingConfig is how payees are onboarded; the API's configuration
// maps its environment onto it.
type OnboardingConfig struct {
	// RefreshURL is where Stripe sends a payee whose link expired or was
	// used: it should ask the API for a new link. ReturnURL is where the
	// payee lands after the flow. Both are required, absolute http(s).
	RefreshURL, ReturnURL string
	// Country of new accounts (ISO 3166-1 alpha-2); "" lets Stripe take
	// the platform's.
	Country string
}

// Validate checks the URLs.
func (c OnboardingConfig) Validate() error {
	var errs []error
	for name, v := range map[string]string{"refresh URL": c.RefreshURL, "return URL": c.ReturnURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("payout onboarding: the %s %q must be an absolute http(s) URL", name, v))
		}
	}
	if c.Country != "" && !countryRE.MatchString(c.Country) {
		errs = append(errs, fmt.Errorf("payout onboarding: country %q is not two upper-case letters", c.Country))
	}
	return errors.Join(errs...)
}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// ErrInvalidPayee is a payee reference that is not creator:<id> or
// organization:<uuid> (the API answers 400).
var ErrInvalidPayee = errors.New("payout: invalid payee")

// Onboarder creates payees' Express accounts and their onboarding links.
type Onboarder struct {
	db       *bun.DB
	accounts Accounts
	cfg      OnboardingConfig
	log      *slog.Logger
}

// NewOnboarder returns an onboarder creating accounts through accounts.
func NewOnboarder(db *bun.DB, accounts Accounts, cfg OnboardingConfig, log *slog.Logger) (*Onboarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || accounts == nil || log == nil {
		return nil, errors.New("payout onboarding: a database, a Stripe client and a logger are required")
	}
	return &Onboarder{db: db, accounts: accounts, cfg: cfg, log: log}, nil
}

// Onboarding is what Onboard did.
type Onboarding struct {
	Link            Link
	StripeAccountID string
	Created         bool // the account was created by this call
}

// accountKey is the Stripe idempotency key of a payee's account: a retry
// after a crash between Stripe's answer and the commit gets the same
// account back for about 24 hours.
func accountKey(kind, id string) string { return "payee:" + kind + ":" + id + ":account" }

// Onboard makes sure the payee has an Express account, creating it once,
// and returns a new Account Link to it. Concurrent calls for one payee wait
// for each other on the payee's row lock, held while Stripe creates the
// account, so one account is created; the account's idempotency key,
// derived from the payee, makes a retry after a crash between Stripe's
// answer and the commit get the same account (and account.updated, which
// carries the payee in the account's metadata, attaches an account whose
// commit was lost after the key expired).
func (o *Onboarder) Onboard(ctx context.Context, kind, id string) (Onboarding, error) {
	ref, err := ParsePayeeRef(kind + ":" + id)
	if err != nil {
		return Onboarding{}, fmt.Errorf("%w: %w", ErrInvalidPayee, err)
	}
	var out Onboarding
	err = o.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`INSERT INTO payees (kind, id) VALUES (?, ?) ON CONFLICT DO NOTHING`, ref.Kind, ref.ID).Exec(ctx); err != nil {
			return fmt.Errorf("payout onboarding: insert payee %s: %w", ref, err)
		}
		var p model.Payee
		if err := tx.NewSelect().Model(&p).Where("kind = ? AND id = ?", ref.Kind, ref.ID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("payout onboarding: lock payee %s: %w", ref, err)
		}
		if p.StripeAccountID != nil {
			out.StripeAccountID = *p.StripeAccountID
			return nil
		}
		acct, err := o.accounts.CreateExpressAccount(ctx, AccountRequest{PayeeKind: ref.Kind, PayeeID: ref.ID, Country: o.cfg.Country},
			accountKey(ref.Kind, ref.ID))
		if err != nil {
			return fmt.Errorf("payout onboarding: create the Express account of %s: %w", ref, err)
		}
		if _, err := tx.NewRaw(`UPDATE payees SET stripe_account_id = ?, updated_at = now() WHERE kind = ? AND id = ?`,
			acct, ref.Kind, ref.ID).Exec(ctx); err != nil {
			return fmt.Errorf("payout onboarding: store account %s of %s: %w", acct, ref, err)
		}
		out.StripeAccountID, out.Created = acct, true
		return nil
	})
	if err != nil {
		return Onboarding{}, err
	}
	if out.Created {
		o.log.Info("payout onboarding: Express account created", "payee", ref.String(), "account", out.StripeAccountID)
	}
	out.Link, err = o.accounts.CreateAccountLink(ctx, out.StripeAccountID, o.cfg.RefreshURL, o.cfg.ReturnURL)
	if err != nil {
		return Onboarding{}, fmt.Errorf("payout onboarding: account link of %s: %w", ref, err)
	}
	return out, nil
}
