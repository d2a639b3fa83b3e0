package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/text"
)

// Access answers GET /v1/customers/{customer}/access/{content}.
type Access struct {
	Object     string     `json:"object"` // "access"
	CustomerID string     `json:"customer_id"`
	ContentID  string     `json:"content_id"`
	Active     bool       `json:"active"`
	AccessType *string    `json:"access_type"` // purchased, subscription, complimentary, preview; null when never granted
	Purchase   *AccessBy  `json:"purchase"`    // the granting purchase when access_type is purchased
	Since      *time.Time `json:"since"`       // when the grant started
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// AccessBy is the purchase behind a purchased grant.
type AccessBy struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// access serves the access check: the hot path (every page view of the
// platform), one indexed query and no transaction.
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
	row, found, err := loadAccess(r.Context(), s.accessQ, customer, content, s.cfg.Now())
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	out := Access{Object: "access", CustomerID: customer, ContentID: content.String()}
	if found {
		out.Active = row.Active
		out.AccessType = &row.AccessType
		since := row.GrantedAt.UTC()
		out.Since = &since
		out.ExpiresAt, out.RevokedAt = utcPtr(row.ExpiresAt), utcPtr(row.RevokedAt)
		if row.PurchaseID != nil {
			out.Purchase = &AccessBy{ID: row.PurchaseID.String()}
			if row.PurchaseStatus != nil {
				out.Purchase.Status = *row.PurchaseStatus
			}
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
