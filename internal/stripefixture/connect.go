package stripefixture

import (
	"encoding/json"
	"fmt"
	"time"
)

// Metadata keys paystream's onboarding writes on a payee's Express account
// (payout.MetadataPayeeKind and payout.MetadataPayeeID; a payout test
// checks they agree).
const (
	MetadataPayeeKind = "paystream_payee_kind"
	MetadataPayeeID   = "paystream_payee_id"
)

// Account describes the connected account of account.updated.
type Account struct {
	ID               string // acct_…; generated when empty
	ChargesEnabled   bool
	PayoutsEnabled   bool
	DetailsSubmitted bool
	CurrentlyDue     []string // requirements.currently_due
	PastDue          []string // requirements.past_due
	DisabledReason   string   // requirements.disabled_reason; none when empty
	// PayeeKind and PayeeID are the account's metadata as paystream's
	// onboarding writes it; none when empty (an account paystream did not
	// create).
	PayeeKind, PayeeID string
	Country            string // US when empty
}

// AccountUpdatedEvent builds account.updated, a Connect event: it happens
// on the connected account, so the event carries the account at its top
// level as well as in data.object. Stripe sends it to a Connect endpoint.
func AccountUpdatedEvent(m Meta, a Account) ([]byte, error) {
	obj, err := load("account.json")
	if err != nil {
		return nil, err
	}
	orDefault(&a.ID, "acct_"+randID(16))
	orDefault(&a.Country, "US")
	obj["id"], obj["country"], obj["created"] = a.ID, a.Country, created(m).Add(-24*time.Hour).Unix()
	obj["charges_enabled"], obj["payouts_enabled"], obj["details_submitted"] = a.ChargesEnabled, a.PayoutsEnabled, a.DetailsSubmitted
	capability := "inactive"
	if a.PayoutsEnabled {
		capability = "active"
	}
	obj["capabilities"] = map[string]any{"transfers": capability}
	md := map[string]string{}
	if a.PayeeKind != "" || a.PayeeID != "" {
		md[MetadataPayeeKind], md[MetadataPayeeID] = a.PayeeKind, a.PayeeID
	}
	obj["metadata"] = metadata(md)
	req := obj["requirements"].(map[string]any)
	req["currently_due"], req["past_due"] = jsonStrings(a.CurrentlyDue), jsonStrings(a.PastDue)
	req["eventually_due"] = jsonStrings(append(append([]string{}, a.CurrentlyDue...), a.PastDue...))
	if a.DisabledReason != "" {
		req["disabled_reason"] = a.DisabledReason
	}
	obj["external_accounts"].(map[string]any)["url"] = "/v1/accounts/" + a.ID + "/external_accounts"
	return connectEnvelope("account.updated", m, a.ID, obj)
}

// DeauthorizedEvent builds account.application.deauthorized: the
// connected account accountID disconnected the platform's application.
// data.object is the application; the account is only at the top level.
func DeauthorizedEvent(m Meta, accountID string) ([]byte, error) {
	if accountID == "" {
		return nil, fmt.Errorf("stripefixture: account.application.deauthorized needs an account")
	}
	obj, err := load("application.json")
	if err != nil {
		return nil, err
	}
	return connectEnvelope("account.application.deauthorized", m, accountID, obj)
}

// Transfer describes the transfer of transfer.reversed: one of the
// platform's transfers to a connected account.
type Transfer struct {
	ID            string // tr_…; generated when empty
	Amount        int64
	Currency      string // usd when empty
	Destination   string // acct_…
	TransferGroup string // payout:<id> for paystream's payouts; none when empty
	// Reversals are the transfer's reversals, oldest first; amount_reversed
	// is their sum and reversed is true when it reaches the amount.
	Reversals []TransferReversal
}

// TransferReversal is one reversal of a transfer.
type TransferReversal struct {
	ID     string // trr_…; generated when empty
	Amount int64
}

// TransferReversedEvent builds transfer.reversed, a platform event (no
// top-level account): the transfer with its cumulative amount_reversed.
func TransferReversedEvent(m Meta, t Transfer) ([]byte, error) {
	obj, err := load("transfer.json")
	if err != nil {
		return nil, err
	}
	orDefault(&t.ID, "tr_"+randID(24))
	orDefault(&t.Currency, "usd")
	var reversed int64
	reversals := make([]any, 0, len(t.Reversals))
	for i, r := range t.Reversals {
		ro, err := load("transfer_reversal.json")
		if err != nil {
			return nil, err
		}
		orDefault(&r.ID, "trr_"+randID(24))
		ro["id"], ro["amount"], ro["currency"], ro["transfer"] = r.ID, r.Amount, t.Currency, t.ID
		ro["created"] = created(m).Add(time.Duration(i-len(t.Reversals)) * time.Second).Unix()
		// Stripe lists newest first.
		reversals = append([]any{ro}, reversals...)
		reversed += r.Amount
	}
	obj["id"], obj["amount"], obj["amount_reversed"], obj["currency"] = t.ID, t.Amount, reversed, t.Currency
	obj["destination"], obj["reversed"], obj["livemode"] = t.Destination, reversed >= t.Amount, m.Livemode
	obj["created"] = created(m).Add(-time.Hour).Unix()
	if t.TransferGroup != "" {
		obj["transfer_group"] = t.TransferGroup
	}
	obj["reversals"] = map[string]any{
		"object": "list", "data": reversals, "has_more": false, "total_count": len(reversals),
		"url": "/v1/transfers/" + t.ID + "/reversals",
	}
	return envelope("transfer.reversed", m, obj)
}

// connectEnvelope is envelope with the event's top-level account, as Stripe
// sends the events that happen on a connected account.
func connectEnvelope(eventType string, m Meta, account string, obj map[string]any) ([]byte, error) {
	b, err := envelope(eventType, m, obj)
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("stripefixture: %w", err)
	}
	ev["account"] = account
	return json.Marshal(ev)
}

// jsonStrings returns ss as a JSON array, [] when empty.
func jsonStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
