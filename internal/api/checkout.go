package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/model"
)

// CheckoutRequest is the body of POST /v1/checkout/sessions. The price is
// never part of it: it comes from the catalog.
type CheckoutRequest struct {
	CustomerID string `json:"customer_id"`
	ContentID  string `json:"content_id"`
	SuccessURL string `json:"success_url,omitempty"`
	CancelURL  string `json:"cancel_url,omitempty"`
}

// CheckoutSession is a created (or reused) Checkout Session: send the
// customer to URL.
type CheckoutSession struct {
	Object      string    `json:"object"` // "checkout_session"
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Status      string    `json:"status"` // open, complete, expired
	CustomerID  string    `json:"customer_id"`
	ContentID   string    `json:"content_id"`
	AmountCents int64     `json:"amount_cents"`
	Currency    string    `json:"currency"`
	ExpiresAt   time.Time `json:"expires_at"`
	CreatedAt   time.Time `json:"created_at"`
}

func sessionOut(s *model.CheckoutSession) CheckoutSession {
	out := CheckoutSession{Object: "checkout_session", ID: s.ID, Status: s.Status, CustomerID: s.CustomerID,
		ContentID: s.ContentID.String(), AmountCents: s.AmountCents, Currency: s.Currency,
		ExpiresAt: s.ExpiresAt.UTC(), CreatedAt: s.CreatedAt.UTC()}
	if s.URL != nil {
		out.URL = *s.URL
	}
	return out
}

// maxIdempotencyKey is Stripe's limit on Idempotency-Key.
const maxIdempotencyKey = 255

// checkoutInput is a validated CheckoutRequest.
type checkoutInput struct {
	customer   string
	content    uuid.UUID
	successURL string
	cancelURL  string
	key        string // Idempotency-Key, "" when the caller sent none
}

// parseCheckout decodes and validates the request; a 400 names every bad
// field.
func (s *Server) parseCheckout(r *http.Request) (checkoutInput, error) {
	var req CheckoutRequest
	if err := decodeBody(r, &req, "customer_id, content_id and optional success_url, cancel_url", false); err != nil {
		return checkoutInput{}, err
	}
	fields := map[string]string{}
	in := checkoutInput{customer: req.CustomerID}
	in.successURL, in.cancelURL, in.key = s.checkoutCommon(r, fields, req.CustomerID, req.SuccessURL, req.CancelURL)
	var err error
	if in.content, err = uuid.Parse(req.ContentID); err != nil {
		fields["content_id"] = "must be a uuid"
	}
	if len(fields) > 0 {
		return checkoutInput{}, invalidFields("fields", fields)
	}
	return in, nil
}

// checkoutCommon checks what every checkout request has: the customer id,
// the success and cancel URLs (the defaults when absent), the query string
// and the Idempotency-Key; problems go into fields.
func (s *Server) checkoutCommon(r *http.Request, fields map[string]string, customer, successURL, cancelURL string) (success, cancel, key string) {
	if why := text.CustomerID(customer); why != "" {
		fields["customer_id"] = why
	}
	success = s.redirectField(fields, "success_url", successURL, s.cfg.SuccessURL)
	cancel = s.redirectField(fields, "cancel_url", cancelURL, s.cfg.CancelURL)
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	key = r.Header.Get("Idempotency-Key")
	if _, sent := r.Header["Idempotency-Key"]; sent && !validIdempotencyKey(key) {
		fields["Idempotency-Key"] = "must be 1 to 255 printable characters"
	}
	return success, cancel, key
}

// decodeBody reads the request body, one JSON object, into v: unknown
// fields, trailing data and bodies over maxBodyBytes are the caller's 400,
// whose message names the fields the body may hold (shape). An empty body
// is accepted when optional (v keeps its zero value).
func decodeBody(r *http.Request, v any, shape string, optional bool) *Error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return errorf(CodeInvalidRequest, "the body could not be read or is over %d bytes", maxBodyBytes)
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeInvalidRequest, "the body must be a JSON object with %s: %v", shape, err)
	}
	if dec.More() {
		return errorf(CodeInvalidRequest, "the body must hold exactly one JSON object")
	}
	return nil
}

// redirectField is the redirect URL the caller sent as field name, checked
// against the allow-list (a problem goes into fields), or def when the
// caller sent none.
func (s *Server) redirectField(fields map[string]string, name, u, def string) string {
	if u == "" {
		return def
	}
	if why := redirectProblem(u, s.cfg.AllowedHosts); why != "" {
		fields[name] = why
	}
	return u
}

// maxRedirectURL bounds a success or cancel URL, in bytes (Stripe takes up
// to 5000 characters).
const maxRedirectURL = 5000

// redirectProblem says what is wrong with a success or cancel URL of the
// body, or "": text first, so a NUL or a broken byte is named as such.
func redirectProblem(u string, allowed []string) string {
	if why := text.Problem(u, maxRedirectURL); why != "" {
		return why
	}
	if err := checkRedirect(u, allowed); err != nil {
		return err.Error()
	}
	return ""
}

// validIdempotencyKey: 1 to 255 printable ASCII characters, as Stripe takes.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// createCheckout serves POST /v1/checkout/sessions.
//
// Under a per-(customer, content) advisory lock, in one transaction: a
// replayed Idempotency-Key returns its session (201), and a key of a
// subscription checkout is refused; unknown or deleted content is 404,
// free content 400; a customer with active access gets 409; an open,
// unexpired session of the customer for the content is returned (200);
// otherwise Stripe creates the session and it is recorded (201).
// When Stripe fails the transaction rolls back and nothing is written.
func (s *Server) createCheckout(w http.ResponseWriter, r *http.Request) {
	in, err := s.parseCheckout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		out    *model.CheckoutSession
		status int
		result string
	)
	if err := s.inTx(r.Context(), func(ctx context.Context, tx bun.Tx) (err error) {
		out, status, result, err = s.checkoutTx(ctx, tx, in)
		return err
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.Checkouts.WithLabelValues(result).Inc()
	writeJSON(w, status, sessionOut(out))
}

// inTx runs f in a transaction; a failure that is not already an API
// error (a refusal, Stripe's) is the database's.
func (s *Server) inTx(ctx context.Context, f func(context.Context, bun.Tx) error) error {
	err := s.db.RunInTx(ctx, nil, f)
	var e *Error
	if err != nil && !errors.As(err, &e) {
		return dbFailure(err)
	}
	return err
}

// checkoutTx is createCheckout's transaction.
func (s *Server) checkoutTx(ctx context.Context, tx bun.Tx, in checkoutInput) (*model.CheckoutSession, int, string, error) {
	if err := lockCustomerContent(ctx, tx, in.customer, in.content); err != nil {
		return nil, 0, "", err
	}
	if in.key != "" {
		prev, err := sessionByKey(ctx, tx, in.key)
		if err != nil {
			return nil, 0, "", err
		}
		if prev != nil {
			if prev.CustomerID != in.customer || prev.ContentID != in.content {
				return nil, 0, "", errorf(CodeIdempotencyReused,
					"Idempotency-Key was used for another customer or content; use a fresh key per checkout")
			}
			return prev, http.StatusCreated, "replayed", nil
		}
		other, err := subscriptionSessionByKey(ctx, tx, in.key)
		if err != nil {
			return nil, 0, "", err
		}
		if other != nil {
			return nil, 0, "", errorf(CodeIdempotencyReused,
				"Idempotency-Key was used for a subscription checkout; use a fresh key per checkout")
		}
	}
	c, err := loadContent(ctx, tx, in.content)
	if err != nil {
		return nil, 0, "", err
	}
	if c == nil {
		return nil, 0, "", errorf(CodeNotFound, "content %s does not exist or was deleted", in.content)
	}
	if c.PriceCents <= 0 {
		return nil, 0, "", errorf(CodeContentFree, "content %s is free: there is nothing to check out", in.content)
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond) // Postgres' precision: a replay answers the same
	acc, found, err := loadAccess(ctx, tx.Tx, in.customer, in.content, now)
	if err != nil {
		return nil, 0, "", err
	}
	if found && acc.Active {
		e := errorf(CodeAlreadyOwned, "customer already has %s access to content %s", acc.AccessType, in.content)
		if acc.PurchaseID != nil {
			e.Message += " through purchase " + acc.PurchaseID.String()
		}
		return nil, 0, "", e
	}
	open, err := openSession(ctx, tx, in.customer, in.content, now)
	if err != nil {
		return nil, 0, "", err
	}
	if open != nil {
		return open, http.StatusOK, "reused", nil
	}

	key := in.key
	if key == "" {
		// stripe-go reuses the request's key on its retries, so even
		// without the caller's key a retried create is idempotent.
		key = "paystream-" + uuid.NewString()
	}
	req := checkoutRequest{
		CustomerID: in.customer, ContentID: c.ID.String(), OrganizationID: c.OrganizationID.String(),
		ProductName: "Content " + c.ID.String(), AmountCents: c.PriceCents, Currency: c.Currency,
		SuccessURL: in.successURL, CancelURL: in.cancelURL, ExpiresAt: now.Add(s.cfg.SessionTTL).Truncate(time.Second),
		IdempotencyKey: key,
		Metadata: map[string]string{
			purchase.MetaCustomerID:     in.customer,
			purchase.MetaContentID:      c.ID.String(),
			purchase.MetaOrganizationID: c.OrganizationID.String(),
			purchase.MetaAmountPaid:     strconv.FormatInt(c.PriceCents, 10),
			purchase.MetaCurrency:       c.Currency,
		},
	}
	var ss stripeSession
	if err := s.callStripe(opCheckoutCreate, func() (err error) {
		ss, err = s.stripe.CreateCheckout(ctx, req)
		return err
	}); err != nil {
		return nil, 0, "", err
	}
	row := &model.CheckoutSession{
		ID: ss.ID, CustomerID: in.customer, ContentID: c.ID, OrganizationID: c.OrganizationID,
		AmountCents: c.PriceCents, Currency: c.Currency, Status: model.CheckoutOpen, Livemode: ss.Livemode,
		ExpiresAt: ss.ExpiresAt, CreatedAt: now, UpdatedAt: now,
	}
	if ss.URL != "" {
		row.URL = &ss.URL
	}
	if in.key != "" {
		row.IdempotencyKey = &in.key
	}
	got, err := insertSession(ctx, tx, row)
	if err != nil {
		return nil, 0, "", err
	}
	return got, http.StatusCreated, "created", nil
}
