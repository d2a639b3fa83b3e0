package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// LedgerEntry is one entry of a payee's ledger: a signed amount on one of
// its accounts, with the balance it left and the transaction (cause) it
// belongs to.
type LedgerEntry struct {
	Object       string    `json:"object"` // "ledger_entry"
	ID           int64     `json:"id"`     // the cursor of the next page
	Currency     string    `json:"currency"`
	Account      string    `json:"account"` // pending, available, disputed, in_transit, paid_out
	Amount       int64     `json:"amount"`  // minor units; positive adds to the account
	BalanceAfter int64     `json:"balance_after"`
	Cause        string    `json:"cause"` // purchase, release, refund, dispute_*, payout_*, transfer_reversed
	PurchaseID   *string   `json:"purchase_id"`
	PayoutID     *string   `json:"payout_id"`
	Reference    *string   `json:"reference"` // the Stripe object behind the cause (re_…, du_…, tr_…)
	EffectiveAt  time.Time `json:"effective_at"`
	CreatedAt    time.Time `json:"created_at"`
}

// LedgerEntryList is one page of a payee's entries, newest first.
type LedgerEntryList struct {
	Object  string        `json:"object"` // "list"
	Data    []LedgerEntry `json:"data"`
	HasMore bool          `json:"has_more"`
}

// PayoutList is one page of a payee's payouts, newest first.
type PayoutList struct {
	Object  string   `json:"object"` // "list"
	Data    []Payout `json:"data"`
	HasMore bool     `json:"has_more"`
}

// ledger serves GET /v1/payees/{kind}/{id}/ledger: entries newest first,
// cursor pages (limit, starting_after = the last entry's id), optionally of
// one currency.
func (p *payees) ledger(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	ref := parsePayee(r, fields)
	v, limit, after := parsePage(r, fields)
	q := ledgerQuery{Ref: ref, Limit: limit, Currency: v.Get("currency")}
	if q.Currency != "" && !validCurrency(q.Currency) {
		fields["currency"] = "must be a three-letter lower-case ISO 4217 code"
	}
	if after != "" {
		id, err := strconv.ParseInt(after, 10, 64)
		if err != nil || id < 1 {
			fields["starting_after"] = "must be the id of a ledger entry of this payee"
		}
		q.After = &id
	}
	if len(fields) > 0 {
		p.fail(w, r, invalidFields("request", fields))
		return
	}
	rows, more, err := listLedger(r.Context(), p.db, q)
	if !p.pageFound(w, r, ref, len(rows), err, errEntryUnknown) {
		return
	}
	out := LedgerEntryList{Object: "list", Data: make([]LedgerEntry, len(rows)), HasMore: more}
	for i, e := range rows {
		out.Data[i] = LedgerEntry{Object: "ledger_entry", ID: e.ID, Currency: e.Currency, Account: e.Kind, Amount: e.Amount,
			BalanceAfter: e.BalanceAfter, Cause: e.Cause, EffectiveAt: e.EffectiveAt.UTC(), CreatedAt: e.Created.UTC()}
		if e.PurchaseID.Valid {
			s := e.PurchaseID.UUID.String()
			out.Data[i].PurchaseID = &s
		}
		if e.PayoutID.Valid {
			s := e.PayoutID.UUID.String()
			out.Data[i].PayoutID = &s
		}
		if e.Reference.Valid {
			out.Data[i].Reference = &e.Reference.String
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// payouts serves GET /v1/payees/{kind}/{id}/payouts: payouts newest first,
// cursor pages (limit, starting_after = the last payout's id).
func (p *payees) payouts(w http.ResponseWriter, r *http.Request) {
	fields := map[string]string{}
	ref := parsePayee(r, fields)
	_, limit, cursor := parsePage(r, fields)
	var after *uuid.UUID
	if cursor != "" {
		id, err := uuid.Parse(cursor)
		if err != nil {
			fields["starting_after"] = "must be the id of a payout of this payee"
		}
		after = &id
	}
	if len(fields) > 0 {
		p.fail(w, r, invalidFields("request", fields))
		return
	}
	ps, more, err := listPayouts(r.Context(), p.db, ref, after, limit)
	if !p.pageFound(w, r, ref, len(ps), err, errPayoutUnknown) {
		return
	}
	out := PayoutList{Object: "list", Data: make([]Payout, len(ps)), HasMore: more}
	for i := range ps {
		out.Data[i] = payoutOut(&ps[i])
	}
	writeJSON(w, http.StatusOK, out)
}

// pageFound reports whether a page of n items listed with err may be
// written; when not, it answered: 400 for a cursor that is not the payee's
// (cursorErr), the database's failure, or 404 for the empty page of a payee
// with neither a row nor a ledger account, so it is not mistaken for a
// payee with no history yet.
func (p *payees) pageFound(w http.ResponseWriter, r *http.Request, ref payeeRef, n int, err, cursorErr error) bool {
	switch {
	case errors.Is(err, cursorErr):
		p.fail(w, r, &Error{Code: CodeInvalidRequest, Message: "starting_after " + err.Error(),
			Fields: map[string]string{"starting_after": err.Error()}})
		return false
	case err != nil:
		p.fail(w, r, dbFailure(err))
		return false
	case n > 0:
		return true
	}
	known, err := payeeKnown(r.Context(), p.db, ref)
	switch {
	case err != nil:
		p.fail(w, r, dbFailure(err))
	case !known:
		p.fail(w, r, errorf(CodeNotFound, "payee %s/%s has neither been onboarded nor earned", ref.Kind, ref.ID))
	}
	return err == nil && known
}
