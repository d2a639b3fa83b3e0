package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
)

// sendTypes are the event types `paystream send` can build: every type the
// processor's families route (stripefixture's tests build each of them).
func sendTypes() []string { return reconcile.HandledTypes() }

// sendOptions are the flags of `paystream send`.
type sendOptions struct {
	url, secret, dataDir                  string
	content, org, customer, currency      string
	session, paymentIntent, charge        string
	amount, refundAmount                  int64
	paymentStatus, disputeStatus, eventID string
	repeat                                int
	duplicate                             bool
	apiVersion                            string
	timeout                               time.Duration
	apiSession                            string
	// Subscription events (send_subscription.go).
	subscription, plan, invoice, status, billingReason string
	amountSet                                          bool
	every                                              time.Duration
}

func runSend(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	if len(args) > 0 && slices.Contains(connectSendTypes(), args[0]) {
		return runSendConnect(ctx, args[0], args[1:], getenv, stdout, stderr)
	}
	var o sendOptions
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/webhooks/stripe", "edge webhook URL")
	fs.StringVar(&o.secret, "secret", "", "signing secret (default: first of $STRIPE_WEBHOOK_SECRET, else the one `paystream dev` generated)")
	fs.StringVar(&o.dataDir, "data-dir", "./.paystream", "where `paystream dev` keeps its generated secret")
	fs.StringVar(&o.content, "content", demo.ContentID, "metadata contentId")
	fs.StringVar(&o.org, "org", demo.OrganizationID, "metadata organizationId")
	fs.StringVar(&o.customer, "customer", demo.CustomerID, "metadata customerId")
	fs.Int64Var(&o.amount, "amount", demo.PriceCents, "amount in minor units (checkout: amount_total and metadata amountPaidCents; subscription events: the plan's price, the demo plan's when not given)")
	fs.StringVar(&o.currency, "currency", demo.Currency, "currency")
	fs.StringVar(&o.session, "session", "", "checkout session id (default: a new cs_test_… id)")
	fs.StringVar(&o.paymentIntent, "payment-intent", "", "payment intent id (default: a new pi_… id; pass the one printed by a checkout to refund or dispute it)")
	fs.StringVar(&o.charge, "charge", "", "charge id (default: a new ch_… id)")
	fs.Int64Var(&o.refundAmount, "refund-amount", 0, "charge.refunded: amount refunded (default: the whole amount)")
	fs.StringVar(&o.paymentStatus, "payment-status", "", "checkout: paid, unpaid or no_payment_required (default from the event type)")
	fs.StringVar(&o.disputeStatus, "dispute-status", "", "charge.dispute.*: needs_response, won, lost (default needs_response; closed defaults to lost)")
	fs.StringVar(&o.eventID, "event-id", "", "event id (default: a new evt_… id per event)")
	fs.StringVar(&o.apiVersion, "api-version", stripefixture.APIVersion, "api_version written into the event")
	fs.IntVar(&o.repeat, "repeat", 1, "send N distinct events (new ids each)")
	fs.BoolVar(&o.duplicate, "duplicate", false, "send each event twice with the same id (Stripe retry demo)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "HTTP timeout per request")
	fs.StringVar(&o.apiSession, "api-session", "", "checkout: complete (or expire) a session created through the purchase API; its customer, content, organization, amount and currency come from checkout_sessions ($DATABASE_URL)")
	o.subscriptionFlags(fs)
	setUsage(fs, stderr,
		"usage: paystream send <event-type> [flags]",
		"       paystream send "+lifecycleSequence+" [--customer user_demo] [--plan <plan id>] [flags]",
		"builds a realistic Stripe event (API "+stripefixture.APIVersion+"), signs it like Stripe, posts it to the edge",
		"event types:\n  "+strings.Join(sendTypes(), "\n  "),
		"sequences:\n  "+lifecycleSequence+"  a membership bought, renewed, failing, recovering, canceled at period end and deleted (13 events)",
		"creator payout events (flags of their own: paystream send <type> -h):\n  "+strings.Join(connectSendTypes(), "\n  "),
	)
	typ, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		typ, rest = args[0], args[1:]
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if typ == "" && fs.NArg() > 0 {
		typ = fs.Arg(0)
	}
	fs.Visit(func(f *flag.Flag) { o.amountSet = o.amountSet || f.Name == "amount" })
	if typ == lifecycleSequence {
		return o.sendLifecycle(ctx, getenv, stdout)
	}
	if !slices.Contains(sendTypes(), typ) {
		fs.Usage()
		if typ == "" {
			return errUsage
		}
		return fmt.Errorf("send: unknown event type %q", typ)
	}
	if o.repeat < 1 {
		return fmt.Errorf("send: --repeat must be at least 1")
	}
	if o.apiSession != "" {
		if err := o.fromAPISession(ctx, typ, getenv); err != nil {
			return err
		}
	}
	secret, err := o.resolveSecret(getenv)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: o.timeout}
	failed := 0
	for i := 0; i < o.repeat; i++ {
		body, ids, err := o.buildAny(typ, i)
		if err != nil {
			return err
		}
		sends := 1
		if o.duplicate {
			sends = 2
		}
		for s := 0; s < sends; s++ {
			status, answer, err := post(ctx, client, o.url, body, stripefixture.Sign(body, secret, time.Now()))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s %s -> %d %s\n", typ, ids.event, ids.names, status, strings.TrimSpace(answer))
			if status != http.StatusOK {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("send: %d request(s) were not accepted", failed)
	}
	return nil
}

// sentIDs are the Stripe ids of one built event, printed so a follow-up
// event (refund, dispute, a subscription's next event) can name the same
// payment or subscription.
type sentIDs struct {
	event string
	names string // "session=… payment_intent=…"
}

// idList prints the non-empty ids as name=id.
func idList(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			parts = append(parts, pairs[i]+"="+pairs[i+1])
		}
	}
	return strings.Join(parts, " ")
}

// buildAny builds event i of the run, of a purchase or of a subscription.
func (o sendOptions) buildAny(typ string, i int) ([]byte, sentIDs, error) {
	if slices.Contains(subscription.HandledTypes(), typ) {
		return o.buildMember(typ, i)
	}
	return o.build(typ, i)
}

// build builds event i of the run: the first names the ids given by flags,
// every further one (--repeat) is a different payment with new ids.
func (o sendOptions) build(typ string, i int) ([]byte, sentIDs, error) {
	meta := stripefixture.Meta{EventID: o.eventID, Created: time.Now(), APIVersion: o.apiVersion}
	p := stripefixture.Payment{SessionID: o.session, PaymentIntentID: o.paymentIntent, ChargeID: o.charge,
		CustomerID: o.customer, ContentID: o.content, OrganizationID: o.org, Amount: o.amount, Currency: o.currency,
		PaymentStatus: o.paymentStatus, RefundAmount: o.refundAmount, DisputeStatus: o.disputeStatus}
	if i > 0 {
		meta.EventID, p.SessionID, p.PaymentIntentID, p.ChargeID = "", "", "", ""
	}
	body, ids, err := stripefixture.PaymentEvent(typ, meta, p)
	return body, sentIDs{event: ids.Event, names: idList("session", ids.Session, "payment_intent", ids.PaymentIntent,
		"charge", ids.Charge)}, err
}

// fromAPISession fills the checkout fields from the purchase API's record
// of the session, so the event carries exactly the metadata the API wrote.
func (o *sendOptions) fromAPISession(ctx context.Context, typ string, getenv config.Getenv) error {
	if !strings.HasPrefix(typ, "checkout.session.") || o.repeat != 1 {
		return errors.New("send: --api-session goes with one checkout.session.* event")
	}
	p := config.NewParser(getenv)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	if err := p.Err(); err != nil {
		return err
	}
	s, err := api.LoadSession(ctx, dsn, o.apiSession)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	o.session, o.customer, o.content, o.org = s.ID, s.CustomerID, s.ContentID.String(), s.OrganizationID.String()
	o.amount, o.currency = s.AmountCents, s.Currency
	return nil
}

func (o sendOptions) resolveSecret(getenv config.Getenv) (string, error) {
	if o.secret != "" {
		return o.secret, nil
	}
	secret, _, err := devenv.WebhookSecret(getenv, o.dataDir)
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	if secret != "" {
		return secret, nil
	}
	return "", errors.New("send: no signing secret: pass --secret, set STRIPE_WEBHOOK_SECRET, or run `paystream dev` (it writes one to " +
		filepath.Join(o.dataDir, demo.SecretFile) + ")")
}

func post(ctx context.Context, c *http.Client, url string, body []byte, sig string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("send: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) paystream-send")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("send: post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), nil
}
