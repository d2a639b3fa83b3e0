package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/model"
)

// OnboardingRequest is the optional body of POST
// /v1/payees/{kind}/{id}/onboarding: where Stripe sends the payee from the
// Account Link, on a host of the allow-list; the configured defaults
// otherwise.
type OnboardingRequest struct {
	RefreshURL string `json:"refresh_url,omitempty"`
	ReturnURL  string `json:"return_url,omitempty"`
}

// OnboardingLink answers the onboarding route: send the payee to URL
// before ExpiresAt.
type OnboardingLink struct {
	Object          string    `json:"object"` // "account_link"
	URL             string    `json:"url"`
	ExpiresAt       time.Time `json:"expires_at"`
	StripeAccountID string    `json:"stripe_account_id"` // the payee's Express account
}

// Payee answers GET /v1/payees/{kind}/{id}: the payee's Connect account
// state and its balances per currency.
type Payee struct {
	Object          string          `json:"object"` // "payee"
	Kind            string          `json:"kind"`
	ID              string          `json:"id"`
	StripeAccountID *string         `json:"stripe_account_id"` // null before onboarding
	ChargesEnabled  bool            `json:"charges_enabled"`
	PayoutsEnabled  bool            `json:"payouts_enabled"`
	RequirementsDue json.RawMessage `json:"requirements_due"` // Stripe's requirement names, currently or past due
	DisabledReason  *string         `json:"disabled_reason"`
	// PayoutsBlockedReason says why payouts stopped until the account
	// changes (account_invalid, transfers_not_allowed, deauthorized).
	PayoutsBlockedReason *string   `json:"payouts_blocked_reason"`
	Balances             []Balance `json:"balances"`
}

// Balance is a payee's money in one currency, in minor units, by where it
// is in its life: within the hold, available for the next payout, held by
// a dispute, in a payout not settled yet, and transferred (cumulative).
type Balance struct {
	Currency  string `json:"currency"`
	Pending   int64  `json:"pending"`
	Available int64  `json:"available"`
	Disputed  int64  `json:"disputed"`
	InTransit int64  `json:"in_transit"`
	PaidOut   int64  `json:"paid_out"`
}

// onboard serves POST /v1/payees/{kind}/{id}/onboarding: the payee's
// Express account is created once (concurrent calls wait for each other on
// the payee's row; the account's idempotency key is derived from the
// payee), and every call gets a new Account Link.
func (p *payees) onboard(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	ref := parsePayee(r, fields)
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	cfg := p.cfg.Onboarding
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		p.fail(w, r, errorf(CodeInvalidRequest, "the body could not be read or is over %d bytes", maxBodyBytes))
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var req OnboardingRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.More() {
			p.fail(w, r, errorf(CodeInvalidRequest, "the body, when sent, must be one JSON object with optional refresh_url and return_url"))
			return
		}
		for name, u := range map[string]*string{"refresh_url": &req.RefreshURL, "return_url": &req.ReturnURL} {
			if *u == "" {
				continue
			}
			if why := redirectProblem(*u, p.cfg.AllowedHosts); why != "" {
				fields[name] = why
			}
		}
		if req.RefreshURL != "" {
			cfg.RefreshURL = req.RefreshURL
		}
		if req.ReturnURL != "" {
			cfg.ReturnURL = req.ReturnURL
		}
	}
	if len(fields) > 0 {
		p.fail(w, r, invalidFields("request", fields))
		return
	}
	o, err := payout.NewOnboarder(p.db, p.accounts, cfg, p.log)
	if err != nil {
		p.fail(w, r, wrapErr(err, CodeInternal, "onboarding is misconfigured"))
		return
	}
	start := time.Now()
	out, err := o.Onboard(r.Context(), ref.Kind, ref.ID)
	p.metrics.StripeDuration.WithLabelValues(operationOnboarding).Observe(time.Since(start).Seconds())
	if err != nil {
		p.fail(w, r, p.onboardingFailure(err))
		return
	}
	writeJSON(w, http.StatusOK, OnboardingLink{Object: "account_link", URL: out.Link.URL, ExpiresAt: out.Link.ExpiresAt.UTC(),
		StripeAccountID: out.StripeAccountID})
}

// operationOnboarding labels onboarding's Stripe calls in the API's Stripe
// metrics.
const operationOnboarding = "payee_onboarding"

// onboardingFailure classifies a failed onboarding: a Stripe answer or an
// unreachable Stripe (the account is created once whatever happens: a
// retry gets the same account), else the database.
func (p *payees) onboardingFailure(err error) *Error {
	var se *stripe.Error
	var ue *url.Error
	reason := ""
	var e *Error
	switch {
	case errors.Is(err, payout.ErrInvalidPayee):
		return wrapErr(err, CodeInvalidRequest, "the payee is not creator/<id> or organization/<uuid>")
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests:
		e, reason = wrapErr(err, CodeStripeUnavailable, "Stripe is rate limiting onboarding; retry later"), "rate_limited"
	case errors.As(err, &se) && se.HTTPStatusCode >= 500:
		e, reason = wrapErr(err, CodeStripeError, fmt.Sprintf("Stripe answered %d; retry later (the account is created once)", se.HTTPStatusCode)), "server_error"
	case errors.As(err, &se) && se.HTTPStatusCode > 0:
		// Our request or key is wrong (Connect not enabled, a key without
		// write access to Accounts): the operator's to fix.
		e, reason = wrapErr(err, CodeStripeError, fmt.Sprintf("Stripe refused onboarding (%d %s)", se.HTTPStatusCode, se.Type)), "rejected"
	case errors.As(err, &ue): // the HTTP client's errors: no answer, a timeout
		e, reason = wrapErr(err, CodeStripeUnavailable, "Stripe is unreachable or did not answer in time; retry later (the account is created once)"), "unreachable"
	default:
		return dbFailure(err)
	}
	p.metrics.StripeErrors.WithLabelValues(operationOnboarding, reason).Inc()
	return e
}

// payee serves GET /v1/payees/{kind}/{id}: the payee's row and its stored
// balances, two indexed lookups whatever the size of its ledger. A payee
// with neither a row nor a ledger account is 404.
func (p *payees) payee(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	ref := parsePayee(r, fields)
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	if len(fields) > 0 {
		p.fail(w, r, invalidFields("request", fields))
		return
	}
	row, accounts, err := loadPayee(r.Context(), p.db, ref)
	if err != nil {
		p.fail(w, r, dbFailure(err))
		return
	}
	if row == nil && len(accounts) == 0 {
		p.fail(w, r, errorf(CodeNotFound, "payee %s/%s has neither been onboarded nor earned", ref.Kind, ref.ID))
		return
	}
	out := Payee{Object: "payee", Kind: ref.Kind, ID: ref.ID, RequirementsDue: json.RawMessage("[]"), Balances: balancesOf(accounts)}
	if row != nil {
		out.StripeAccountID, out.ChargesEnabled, out.PayoutsEnabled = row.StripeAccountID, row.ChargesEnabled, row.PayoutsEnabled
		out.DisabledReason, out.PayoutsBlockedReason = row.DisabledReason, row.PayoutsBlockedReason
		if len(row.RequirementsDue) > 0 {
			out.RequirementsDue = json.RawMessage(row.RequirementsDue)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// balancesOf folds a payee's accounts into one Balance per currency,
// currencies in order.
func balancesOf(accounts []accountBalance) []Balance {
	out := []Balance{}
	for _, a := range accounts {
		if len(out) == 0 || out[len(out)-1].Currency != a.Currency {
			out = append(out, Balance{Currency: a.Currency})
		}
		b := &out[len(out)-1]
		switch ledger.Kind(a.Kind) {
		case ledger.Pending:
			b.Pending = a.Balance
		case ledger.Available:
			b.Available = a.Balance
		case ledger.Disputed:
			b.Disputed = a.Balance
		case ledger.InTransit:
			b.InTransit = a.Balance
		case ledger.PaidOut:
			b.PaidOut = a.Balance
		}
	}
	return out
}

// payoutOut is a payout as the API shows it.
func payoutOut(p *model.Payout) Payout {
	return Payout{Object: "payout", ID: p.ID.String(), Currency: p.Currency, AmountCents: p.AmountCents,
		AmountReversedCents: p.AmountReversedCents, Status: p.Status, StripeTransferID: p.StripeTransferID,
		FailureCode: p.FailureCode, CreatedAt: p.CreatedAt.UTC(), PaidAt: utcPtr(p.PaidAt), FailedAt: utcPtr(p.FailedAt),
		CanceledAt: utcPtr(p.CanceledAt)}
}

// Payout is one transfer of a payee's available balance.
type Payout struct {
	Object              string     `json:"object"` // "payout"
	ID                  string     `json:"id"`
	Currency            string     `json:"currency"`
	AmountCents         int64      `json:"amount_cents"`
	AmountReversedCents int64      `json:"amount_reversed_cents"`
	Status              string     `json:"status"` // pending, in_transit, paid, failed, canceled
	StripeTransferID    *string    `json:"stripe_transfer_id"`
	FailureCode         *string    `json:"failure_code"`
	CreatedAt           time.Time  `json:"created_at"`
	PaidAt              *time.Time `json:"paid_at"`
	FailedAt            *time.Time `json:"failed_at"`
	CanceledAt          *time.Time `json:"canceled_at"`
}
