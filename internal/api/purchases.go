package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/model"
)

// Purchase is one purchase as the API shows it.
type Purchase struct {
	Object            string     `json:"object"` // "purchase"
	ID                string     `json:"id"`
	CustomerID        string     `json:"customer_id"`
	ContentID         string     `json:"content_id"`
	OrganizationID    string     `json:"organization_id"`
	AmountCents       int64      `json:"amount_cents"`
	Currency          string     `json:"currency"`
	Status            string     `json:"status"`
	Split             Split      `json:"split"`
	RefundedCents     int64      `json:"refunded_amount_cents"`
	Dispute           *Dispute   `json:"dispute"`
	CheckoutSessionID string     `json:"checkout_session_id"`
	PurchasedAt       *time.Time `json:"purchased_at"`
	FailedAt          *time.Time `json:"failed_at"`
	RefundedAt        *time.Time `json:"refunded_at"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// Split is the revenue split snapshot fixed when the purchase completed.
type Split struct {
	PlatformFeeCents     int64 `json:"platform_fee_cents"`
	OrganizationFeeCents int64 `json:"organization_fee_cents"`
	CreatorPayoutCents   int64 `json:"creator_payout_cents"`
	PlatformFeeBps       int   `json:"platform_fee_bps"`
	OrganizationFeeBps   int   `json:"organization_fee_bps"`
}

// Dispute is the dispute state of a purchase, null when never disputed.
type Dispute struct {
	Status   string     `json:"status"` // open, won, lost
	OpenedAt *time.Time `json:"opened_at"`
	ClosedAt *time.Time `json:"closed_at"`
	StripeID *string    `json:"stripe_dispute_id"`
}

// PurchaseList is one page of a customer's purchases, newest first.
type PurchaseList struct {
	Object  string     `json:"object"` // "list"
	Data    []Purchase `json:"data"`
	HasMore bool       `json:"has_more"`
}

func purchaseOut(p *model.Purchase) Purchase {
	out := Purchase{Object: "purchase", ID: p.ID.String(), CustomerID: p.CustomerID, ContentID: p.ContentID.String(),
		OrganizationID: p.OrganizationID.String(), AmountCents: p.AmountPaidCents, Currency: p.Currency, Status: p.Status,
		Split: Split{PlatformFeeCents: p.PlatformFeeCents, OrganizationFeeCents: p.OrganizationFeeCents,
			CreatorPayoutCents: p.CreatorPayoutCents, PlatformFeeBps: p.PlatformFeeBps, OrganizationFeeBps: p.OrganizationFeeBps},
		RefundedCents: p.RefundAmountCents, CheckoutSessionID: p.StripeCheckoutSessionID,
		PurchasedAt: utcPtr(p.PurchasedAt), FailedAt: utcPtr(p.FailedAt), RefundedAt: utcPtr(p.RefundedAt),
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
	if p.DisputeStatus != nil {
		out.Dispute = &Dispute{Status: *p.DisputeStatus, OpenedAt: utcPtr(p.DisputedAt), ClosedAt: utcPtr(p.DisputeClosedAt),
			StripeID: p.StripeDisputeID}
	}
	return out
}

// Page sizes of the purchase history and the subscription list.
const (
	DefaultPageSize = 10
	MaxPageSize     = 100
)

// parsePage reads the query of a list route: limit (DefaultPageSize when
// absent) and the raw starting_after, with the query itself (for the
// route's own filters). Problems go into fields. url.ParseQuery leaves out
// the pairs it cannot read (one holding a semicolon, a broken escape):
// answering without them would ignore a filter the caller sent, so its
// error is the caller's 400.
func parsePage(r *http.Request, fields map[string]string) (v url.Values, limit int, startingAfter string) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fields["query"] = queryMalformed(err)
	}
	limit = DefaultPageSize
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxPageSize {
			fields["limit"] = "must be a whole number from 1 to " + strconv.Itoa(MaxPageSize)
		}
		limit = n
	}
	return v, limit, v.Get("starting_after")
}

// purchaseStatuses are the values of the status filter.
var purchaseStatuses = map[string]bool{
	model.PurchasePending: true, model.PurchaseCompleted: true, model.PurchaseFailed: true,
	model.PurchasePartiallyRefunded: true, model.PurchaseRefunded: true, model.PurchaseDisputeLost: true,
}

// purchases serves GET /v1/customers/{customer}/purchases: newest first,
// Stripe-style cursor pagination (limit, starting_after, has_more) and an
// optional status filter.
func (s *Server) purchases(w http.ResponseWriter, r *http.Request) {
	q := historyQuery{Customer: r.PathValue("customer"), Limit: DefaultPageSize}
	fields := map[string]string{}
	if why := text.CustomerID(q.Customer); why != "" {
		fields["customer"] = why
	}
	v, limit, after := parsePage(r, fields)
	q.Limit = limit
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			fields["starting_after"] = "must be the id of a purchase of this customer"
		}
		q.StartingAfter = &id
	}
	if st := v.Get("status"); st != "" {
		if !purchaseStatuses[st] {
			fields["status"] = "must be one of pending, completed, failed, partially_refunded, refunded, dispute_lost"
		}
		q.Status = st
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	ps, more, err := listPurchases(r.Context(), s.db, q)
	if errors.Is(err, errCursorUnknown) {
		s.fail(w, r, &Error{Code: CodeInvalidRequest, Message: "starting_after " + err.Error(),
			Fields: map[string]string{"starting_after": "is not a purchase of this customer"}})
		return
	}
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	out := PurchaseList{Object: "list", Data: make([]Purchase, len(ps)), HasMore: more}
	for i := range ps {
		out.Data[i] = purchaseOut(&ps[i])
	}
	writeJSON(w, http.StatusOK, out)
}

// purchase serves GET /v1/purchases/{id}.
func (s *Server) purchase(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		fields["id"] = "must be a uuid"
	}
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	p, err := purchaseByID(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	if p == nil {
		s.fail(w, r, errorf(CodeNotFound, "purchase %s does not exist", id))
		return
	}
	writeJSON(w, http.StatusOK, purchaseOut(p))
}
