package api

import (
	"net/http"
	"time"

	"github.com/paystream/paystream/internal/text"
)

// PortalSessionRequest is the optional body of POST
// /v1/customers/{customer}/portal_sessions.
type PortalSessionRequest struct {
	ReturnURL string `json:"return_url,omitempty"`
}

// PortalSession is a Stripe Billing Portal session: send the customer to
// URL to manage their memberships (payment method, invoices, cancel).
type PortalSession struct {
	Object     string    `json:"object"` // "billing_portal_session"
	ID         string    `json:"id"`
	URL        string    `json:"url"`
	CustomerID string    `json:"customer_id"`
	ReturnURL  string    `json:"return_url"`
	CreatedAt  time.Time `json:"created_at"`
}

// createPortalSession serves POST /v1/customers/{customer}/portal_sessions.
// The Stripe customer is the one of the customer's newest subscription
// (Checkout created it; later checkouts reuse it), so a customer with no
// subscription recorded has no portal: 404.
func (s *Server) createPortalSession(w http.ResponseWriter, r *http.Request) {
	customer := r.PathValue("customer")
	var req PortalSessionRequest
	if err := decodeBody(r, &req, "optional return_url", true); err != nil {
		s.fail(w, r, err)
		return
	}
	fields := map[string]string{}
	if why := text.CustomerID(customer); why != "" {
		fields["customer"] = why
	}
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	returnURL := s.redirectField(fields, "return_url", req.ReturnURL, s.cfg.PortalReturnURL)
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	stripeCustomer, err := stripeCustomerOf(r.Context(), s.db, customer)
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	if stripeCustomer == "" {
		s.fail(w, r, errorf(CodeNotFound, "customer %q has no subscription with a Stripe customer; a billing portal needs one", customer))
		return
	}
	var ps portalSession
	if err := s.callStripe(opPortalCreate, func() (err error) {
		ps, err = s.billing.CreatePortalSession(r.Context(), stripeCustomer, returnURL)
		return err
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, PortalSession{Object: "billing_portal_session", ID: ps.ID, URL: ps.URL,
		CustomerID: customer, ReturnURL: ps.ReturnURL, CreatedAt: ps.Created})
}
