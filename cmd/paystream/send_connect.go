package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripefixture"
)

// connectSendTypes are the creator-payout events `paystream send` builds:
// every type the processor's payout family handles.
func connectSendTypes() []string { return payout.HandledTypes() }

// connectSecretVar is the Connect endpoint's secret variable; `paystream
// dev` sets it to its own secret when it is unset.
const connectSecretVar = config.SecretVar + "_CONNECT"

// connectOptions are the flags of `paystream send <payout event>`.
type connectOptions struct {
	url, secret, dataDir, eventID, apiVersion string
	age, timeout                              time.Duration

	account, payee                              string
	payoutsEnabled, chargesEnabled, detailsDone bool
	due, pastDue, disabledReason                string

	payoutID, transfer, group, destination, currency string
	transferAmount, reverse                          int64
}

// runSendConnect is `paystream send` for a payout family event: the
// account events go to the Connect endpoint, signed with its secret;
// transfer.reversed (a platform event) to the default endpoint.
func runSendConnect(ctx context.Context, typ string, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var o connectOptions
	fs := flag.NewFlagSet("send "+typ, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defURL := "http://127.0.0.1:8080/webhooks/stripe/connect"
	if typ == payout.TypeTransferReversed {
		defURL = "http://127.0.0.1:8080/webhooks/stripe"
	}
	fs.StringVar(&o.url, "url", defURL, "edge webhook URL (account events: the Connect endpoint)")
	fs.StringVar(&o.secret, "secret", "", "signing secret (default: first of $"+connectSecretVar+" for account events, else of $STRIPE_WEBHOOK_SECRET, else the one `paystream dev` generated)")
	fs.StringVar(&o.dataDir, "data-dir", "./.paystream", "where `paystream dev` keeps its generated secret")
	fs.StringVar(&o.eventID, "event-id", "", "event id (default: a new evt_… id)")
	fs.StringVar(&o.apiVersion, "api-version", stripefixture.APIVersion, "api_version written into the event")
	fs.DurationVar(&o.age, "age", 0, "the event was created this long ago (an older event than the last applied changes nothing)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "HTTP timeout")
	switch typ {
	case payout.TypeAccountUpdated, payout.TypeAccountDeauthorized:
		fs.StringVar(&o.account, "account", "", "the connected account acct_… (default: the --payee's, from $DATABASE_URL)")
		fs.StringVar(&o.payee, "payee", "", "creator:<id> or organization:<uuid>: written into the account's metadata as onboarding writes it")
	}
	if typ == payout.TypeAccountUpdated {
		fs.BoolVar(&o.payoutsEnabled, "payouts-enabled", false, "payouts_enabled: Stripe lets the account receive payouts (onboarding done)")
		fs.BoolVar(&o.chargesEnabled, "charges-enabled", false, "charges_enabled")
		fs.BoolVar(&o.detailsDone, "details-submitted", false, "details_submitted")
		fs.StringVar(&o.due, "due", "", "comma-separated requirements currently due, e.g. external_account")
		fs.StringVar(&o.pastDue, "past-due", "", "comma-separated requirements past due")
		fs.StringVar(&o.disabledReason, "disabled-reason", "", "requirements.disabled_reason, e.g. requirements.past_due")
	}
	if typ == payout.TypeTransferReversed {
		fs.StringVar(&o.payoutID, "payout", "", "a paid payout's id: its transfer, amount, group and destination come from $DATABASE_URL")
		fs.StringVar(&o.transfer, "transfer", "", "without --payout: the transfer tr_…")
		fs.Int64Var(&o.transferAmount, "transfer-amount", 0, "without --payout: the transfer's amount")
		fs.StringVar(&o.group, "transfer-group", "", "without --payout: its transfer_group (payout:<id> for paystream's)")
		fs.StringVar(&o.destination, "destination", "", "without --payout: its destination acct_…")
		fs.StringVar(&o.currency, "currency", demo.Currency, "without --payout: its currency")
		fs.Int64Var(&o.reverse, "reverse", 0, "amount of this reversal (default: all that is not reversed yet)")
	}
	setUsage(fs, stderr,
		"usage: paystream send "+typ+" [flags]",
		"builds the Stripe event (API "+stripefixture.APIVersion+"), signs it like Stripe, posts it to the edge",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	body, ids, err := o.build(ctx, typ, getenv)
	if err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	secret, err := o.resolveSecret(typ, getenv)
	if err != nil {
		return err
	}
	status, answer, err := post(ctx, &http.Client{Timeout: o.timeout}, o.url, body, stripefixture.Sign(body, secret, time.Now()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s %s -> %d %s\n", typ, ids[0], strings.Join(ids[1:], " "), status, strings.TrimSpace(answer))
	if status != http.StatusOK {
		return errors.New("send: the request was not accepted")
	}
	return nil
}

// build returns the event body and the ids it names (the event's first).
func (o *connectOptions) build(ctx context.Context, typ string, getenv config.Getenv) ([]byte, []string, error) {
	if o.eventID == "" {
		o.eventID = stripefixture.NewID("evt_", 24)
	}
	meta := stripefixture.Meta{EventID: o.eventID, Created: time.Now().Add(-o.age), APIVersion: o.apiVersion}
	switch typ {
	case payout.TypeAccountUpdated, payout.TypeAccountDeauthorized:
		var ref payout.PayeeRef
		if o.payee != "" {
			var err error
			if ref, err = payout.ParsePayeeRef(o.payee); err != nil {
				return nil, nil, fmt.Errorf("--payee: %w", err)
			}
		}
		if o.account == "" {
			if o.payee == "" {
				return nil, nil, errors.New("--account or --payee is required")
			}
			err := withDB(ctx, getenv, func(ctx context.Context, bdb *bun.DB) error {
				var err error
				o.account, err = payout.AccountOfPayee(ctx, bdb, ref)
				return err
			})
			if err != nil {
				return nil, nil, err
			}
		}
		ids := []string{o.eventID, "account=" + o.account}
		if typ == payout.TypeAccountDeauthorized {
			b, err := stripefixture.DeauthorizedEvent(meta, o.account)
			return b, ids, err
		}
		b, err := stripefixture.AccountUpdatedEvent(meta, stripefixture.Account{ID: o.account, ChargesEnabled: o.chargesEnabled,
			PayoutsEnabled: o.payoutsEnabled, DetailsSubmitted: o.detailsDone, CurrentlyDue: list(o.due), PastDue: list(o.pastDue),
			DisabledReason: o.disabledReason, PayeeKind: ref.Kind, PayeeID: ref.ID})
		return b, ids, err
	default: // transfer.reversed
		t := stripefixture.Transfer{ID: o.transfer, Amount: o.transferAmount, Currency: o.currency, Destination: o.destination,
			TransferGroup: o.group}
		var reversed int64
		if o.payoutID != "" {
			id, err := uuid.Parse(o.payoutID)
			if err != nil {
				return nil, nil, fmt.Errorf("--payout %q is not a payout id", o.payoutID)
			}
			err = withDB(ctx, getenv, func(ctx context.Context, bdb *bun.DB) error {
				tr, err := payout.TransferOfPayout(ctx, bdb, id)
				t = stripefixture.Transfer{ID: tr.ID, Amount: tr.Amount, Currency: tr.Currency, Destination: tr.Destination,
					TransferGroup: tr.TransferGroup}
				reversed = tr.AmountReversed
				return err
			})
			if err != nil {
				return nil, nil, err
			}
		}
		if t.ID == "" || t.Amount <= 0 {
			return nil, nil, errors.New("--payout, or --transfer with --transfer-amount, is required")
		}
		amount := o.reverse
		if amount == 0 {
			amount = t.Amount - reversed
		}
		if amount <= 0 || reversed+amount > t.Amount {
			return nil, nil, fmt.Errorf("cannot reverse %d of transfer %s: %d of its %d are reversed already", amount, t.ID, reversed, t.Amount)
		}
		if reversed > 0 {
			t.Reversals = append(t.Reversals, stripefixture.TransferReversal{Amount: reversed})
		}
		t.Reversals = append(t.Reversals, stripefixture.TransferReversal{Amount: amount})
		b, err := stripefixture.TransferReversedEvent(meta, t)
		return b, []string{o.eventID, "transfer=" + t.ID, fmt.Sprintf("amount_reversed=%d", reversed+amount)}, err
	}
}

// resolveSecret is --secret, else the Connect endpoint's secret for the
// account events, else the default endpoint's or the dev mode's.
func (o *connectOptions) resolveSecret(typ string, getenv config.Getenv) (string, error) {
	if o.secret != "" {
		return o.secret, nil
	}
	if typ != payout.TypeTransferReversed {
		if v := strings.TrimSpace(getenv(connectSecretVar)); v != "" {
			return strings.TrimSpace(strings.Split(v, ",")[0]), nil
		}
	}
	secret, _, err := devenv.WebhookSecret(getenv, o.dataDir)
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	if secret == "" {
		return "", errors.New("send: no signing secret: pass --secret, set " + connectSecretVar + " (or STRIPE_WEBHOOK_SECRET), or run `paystream dev` (it writes one to " +
			filepath.Join(o.dataDir, demo.SecretFile) + ")")
	}
	return secret, nil
}

// withDB runs f on $DATABASE_URL.
func withDB(ctx context.Context, getenv config.Getenv, f func(ctx context.Context, bdb *bun.DB) error) error {
	p := config.NewParser(getenv)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	if err := p.Err(); err != nil {
		return err
	}
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer bdb.Close()
	return f(ctx, bdb)
}

// list splits a comma-separated flag value, dropping empty items.
func list(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
