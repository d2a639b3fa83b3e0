package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
)

// RevenueReport answers GET /v1/reports/revenue: what the purchases made
// in [from, to) in one currency (optionally of one organization) brought
// and gave back, and what was transferred to payees in the window; every
// amount in minor units. These are the numbers an admin dashboard shows,
// read from the rows the webhooks wrote.
type RevenueReport struct {
	Object         string    `json:"object"` // "revenue_report"
	Currency       string    `json:"currency"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	OrganizationID *string   `json:"organization_id"` // null: the whole platform
	// Purchases counts the paid purchases with purchased_at in the window.
	Purchases int64 `json:"purchases"`
	// Gross is what their buyers paid; PlatformFees, OrganizationFees and
	// CreatorShare are its split as fixed at purchase time (they sum to
	// Gross).
	Gross            int64 `json:"gross"`
	PlatformFees     int64 `json:"platform_fees"`
	OrganizationFees int64 `json:"organization_fees"`
	CreatorShare     int64 `json:"creator_share"`
	// Refunded is what was refunded of them so far (cumulative).
	Refunded int64 `json:"refunded"`
	// Disputed is the amount of their disputes, whatever the outcome;
	// DisputeLost the part of it lost.
	Disputed    int64 `json:"disputed"`
	DisputeLost int64 `json:"dispute_lost"`
	// PaidOut is what payouts transferred in the window (paid_at in [from,
	// to)) net of transfer reversals: to every payee, or with an
	// organization to it and to the creators of its content.
	PaidOut int64 `json:"paid_out"`
}

// RevenueReportQuery computes the report: $1 currency, $2 from, $3 to, $4
// the organization's uuid and $5 the same as text (both NULL for the whole
// platform). A purchase is paid unless pending or failed; soft-deleted
// purchases count (their money moved). A dispute's amount is the one of
// its newest stored event (closed before created), else what was not
// refunded, as the ledger's backfill reads it.
const RevenueReportQuery = `WITH sales AS (
	SELECT p.amount_paid_cents, p.platform_fee_cents, p.organization_fee_cents, p.creator_payout_cents,
		p.refund_amount_cents, p.dispute_status,
		CASE WHEN p.dispute_status IS NULL THEN 0 ELSE COALESCE(
			(SELECT (e.payload->'data'->'object'->>'amount')::bigint FROM stripe_events e
			 WHERE e.purchase_id = p.id AND e.type IN ('charge.dispute.closed', 'charge.dispute.created')
			   AND e.payload->'data'->'object'->>'amount' ~ '^[0-9]{1,18}$'
			 ORDER BY e.type = 'charge.dispute.closed' DESC, e.processed_at DESC LIMIT 1),
			p.amount_paid_cents - LEAST(p.refund_amount_cents, p.amount_paid_cents)) END AS dispute_amount
	FROM purchases p
	WHERE p.currency = $1 AND p.purchased_at >= $2 AND p.purchased_at < $3
	  AND p.status NOT IN ('pending', 'failed')
	  AND ($4::uuid IS NULL OR p.organization_id = $4::uuid))
SELECT count(*),
	COALESCE(sum(amount_paid_cents), 0)::bigint,
	COALESCE(sum(platform_fee_cents), 0)::bigint,
	COALESCE(sum(organization_fee_cents), 0)::bigint,
	COALESCE(sum(creator_payout_cents), 0)::bigint,
	COALESCE(sum(refund_amount_cents), 0)::bigint,
	COALESCE(sum(dispute_amount), 0)::bigint,
	COALESCE(sum(dispute_amount) FILTER (WHERE dispute_status = 'lost'), 0)::bigint,
	(SELECT COALESCE(sum(o.amount_cents - o.amount_reversed_cents), 0)::bigint FROM payouts o
	 WHERE o.status = 'paid' AND o.currency = $1 AND o.paid_at >= $2 AND o.paid_at < $3
	   AND ($5::text IS NULL
	        OR (o.payee_kind = 'organization' AND o.payee_id = $5::text)
	        OR (o.payee_kind = 'creator' AND o.payee_id IN (SELECT c.creator_id FROM content c WHERE c.organization_id = $4::uuid))))
FROM sales`

// revenueReport serves GET /v1/reports/revenue?from=&to=&currency=
// [&organization_id=]: from and to are RFC 3339 times, from before to.
func (s *Server) revenueReport(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fields["query"] = queryMalformed(err)
	}
	out := RevenueReport{Object: "revenue_report", Currency: v.Get("currency")}
	for name, t := range map[string]*time.Time{"from": &out.From, "to": &out.To} {
		raw := v.Get(name)
		if raw == "" {
			fields[name] = "is required: an RFC 3339 time such as 2026-12-01T00:00:00Z"
			continue
		}
		if *t, err = time.Parse(time.RFC3339Nano, raw); err != nil {
			fields[name] = "must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
		}
		*t = t.UTC()
	}
	if fields["from"] == "" && fields["to"] == "" && !out.From.Before(out.To) {
		fields["to"] = "must be after from"
	}
	if !validCurrency(out.Currency) {
		fields["currency"] = "is required: a three-letter lower-case ISO 4217 code"
	}
	var org, orgText any // NULL for the whole platform
	if o := v.Get("organization_id"); o != "" {
		id, err := uuid.Parse(o)
		if err != nil {
			fields["organization_id"] = "must be a uuid"
		}
		canon := id.String()
		out.OrganizationID, org, orgText = &canon, canon, canon
	}
	if len(fields) > 0 {
		s.fail(w, r, invalidFields("request", fields))
		return
	}
	err = s.db.DB.QueryRowContext(r.Context(), RevenueReportQuery, out.Currency, out.From, out.To, org, orgText).Scan(
		&out.Purchases, &out.Gross, &out.PlatformFees, &out.OrganizationFees, &out.CreatorShare, &out.Refunded,
		&out.Disputed, &out.DisputeLost, &out.PaidOut)
	if err != nil {
		s.fail(w, r, dbFailure(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
