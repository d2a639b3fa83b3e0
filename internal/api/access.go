package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/text"
)

// Access answers GET /v1/customers/{customer}/access/{content}.
type Access struct {
	Object     string    `json:"object"` // "access"
	CustomerID string    `json:"customer_id"`
	ContentID  string    `json:"content_id"`
	Active     bool      `json:"active"`
	AccessType *string   `json:"access_type"` // purchased, subscription, complimentary, preview; null when never granted
	Purchase   *AccessBy `json:"purchase"`    // the granting purchase when access_type is purchased
	// Subscription is the subscription granting access when one does and
	// no purchase or complimentary grant does.
	Subscription *AccessBy  `json:"subscription"`
	Since        *time.Time `json:"since"`      // when the grant (or the subscription) started
	ExpiresAt    *time.Time `json:"expires_at"` // a subscription's access_until
	RevokedAt    *time.Time `json:"revoked_at"`
}

// AccessBy is the purchase or subscription behind a grant.
type AccessBy struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// access serves the access check: the hot path (every page view of the
// platform), no transaction, one statement shared with the checks that
// arrived with it (accessBatcher: subscription.AccessQuery alone,
// subscription.AccessBatchQuery together, both prepared). It answers a purchase or a subscription, with the precedence
// subscription.CheckAccess decides: a bought or given item wins over a
// membership.
func (s *Server) access(w http.ResponseWriter, r *http.Request) {
	customer := r.PathValue("customer")
	fields := map[string]string{}
	if why := queryProblem(r); why != "" {
		fields["query"] = why
	}
	if why := text.CustomerID(customer); why != "" {
		fields["customer"] = why
	}
	content, err := uuid.Parse(r.PathValue("content"))
	if err != nil {
		fields["content"] = "must be a uuid"
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	acc, err := s.checks.check(r.Context(), subscription.AccessKey{Customer: customer, Content: content})
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	out := Access{Object: "access", CustomerID: customer, ContentID: content.String()}
	if acc.Found {
		out.Active = acc.Active
		out.AccessType = &acc.Type
		out.Since, out.ExpiresAt, out.RevokedAt = acc.Since, acc.ExpiresAt, acc.RevokedAt
		if acc.PurchaseID != nil {
			out.Purchase = &AccessBy{ID: acc.PurchaseID.String()}
			if acc.PurchaseStatus != nil {
				out.Purchase.Status = *acc.PurchaseStatus
			}
		}
		if acc.Subscription != nil {
			out.Subscription = &AccessBy{ID: acc.Subscription.ID, Status: acc.Subscription.Status}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
