package api

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/text"
	"github.com/paystream/paystream/model"
)

// Routes of creator payouts (Stripe Connect): payee onboarding, a payee's
// balances, ledger entries and payouts, and the revenue report. The OpenAPI
// document lists them with the purchase routes.
const (
	RoutePayeeOnboarding = "POST /v1/payees/{kind}/{id}/onboarding"
	RoutePayee           = "GET /v1/payees/{kind}/{id}"
	RoutePayeeLedger     = "GET /v1/payees/{kind}/{id}/ledger"
	RoutePayeePayouts    = "GET /v1/payees/{kind}/{id}/payouts"
	RouteRevenueReport   = "GET /v1/reports/revenue"
)

// payoutRoutes are the payout routes, for Routes.
func payoutRoutes() []string {
	return []string{RoutePayeeOnboarding, RoutePayee, RoutePayeeLedger, RoutePayeePayouts, RouteRevenueReport}
}

// payees serves the payee routes: onboarding needs Stripe's Accounts API,
// the reads only the database.
type payees struct {
	*Server
	accounts payout.Accounts
}

// handlePayouts registers the payout routes on mux, behind authentication
// like every route.
func (s *Server) handlePayouts(mux *http.ServeMux) error {
	accounts, err := payout.NewStripe(s.cfg.stripe(), s.log)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	p := &payees{Server: s, accounts: accounts}
	for route, h := range map[string]http.HandlerFunc{
		RoutePayeeOnboarding: p.onboard,
		RoutePayee:           p.payee,
		RoutePayeeLedger:     p.ledger,
		RoutePayeePayouts:    p.payouts,
		RouteRevenueReport:   s.revenueReport,
	} {
		mux.Handle(route, s.authenticate(h))
	}
	return nil
}

// payeeRef is a validated {kind}/{id} of the path, with the owner of its
// ledger accounts.
type payeeRef struct {
	Kind, ID string
	Owner    string // ledger owner, creator:<id> or organization:<uuid>
}

// parsePayee validates the path's kind and id into fields: kind is creator
// or organization; a creator id follows the customer id rule (text, at most
// 255 bytes, no leading or trailing space), an organization id is a uuid
// (answered in its canonical lower-case form).
func parsePayee(r *http.Request, fields map[string]string) payeeRef {
	ref := payeeRef{Kind: r.PathValue("kind"), ID: r.PathValue("id")}
	switch ref.Kind {
	case model.PayeeCreator:
		if why := text.CustomerID(ref.ID); why != "" {
			fields["id"] = why
		}
	case model.PayeeOrganization:
		if id, err := uuid.Parse(ref.ID); err != nil {
			fields["id"] = "must be an organization's uuid"
		} else {
			ref.ID = id.String()
		}
	default:
		fields["kind"] = "must be creator or organization"
		return ref
	}
	if _, bad := fields["id"]; !bad {
		owner, err := ledger.PayeeOwner(ref.Kind, ref.ID)
		if err != nil {
			fields["id"] = "is not a payee id: " + err.Error()
		}
		ref.Owner = owner
	}
	return ref
}
