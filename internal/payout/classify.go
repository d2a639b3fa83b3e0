package payout

import (
	"errors"
	"net/http"

	"github.com/stripe/stripe-go/v76"
)

// answer is what a refused or unanswered transfer request means for its
// idempotency key (DESIGN.md, "Payout runs"). Stripe (API v1) saves the
// answer of a keyed request once its endpoint began executing, errors and
// 500s included, and replays it for that key for about 24 hours.
type answer int

const (
	// unanswered: no answer (timeout, dropped connection), or an answer
	// given before execution began (429, 409 idempotency_key_in_use).
	// Nothing is settled; the same key is sent again.
	unanswered answer = iota
	// spent: refused after execution began (balance_insufficient, a 500,
	// any refusal not known to come before execution). Stripe replays the
	// refusal for this key, so the next attempt uses a new key, later,
	// after listing the transfer group.
	spent
	// refused: the account cannot receive transfers (account_invalid,
	// transfers_not_allowed): the payout fails and the payee is blocked.
	refused
)

// Failure codes of a refused payout, the values of
// payouts.failure_code, payees.payouts_blocked_reason and the reason
// label of paystream_payouts_failed_total.
const (
	CodeAccountInvalid      = string(stripe.ErrorCodeAccountInvalid)
	CodeTransfersNotAllowed = string(stripe.ErrorCodeTransfersNotAllowed)
	CodeDeauthorized        = "deauthorized"
)

// refusalCodes are the Stripe error codes that mean the destination account
// cannot receive this or any later transfer until it changes.
var refusalCodes = map[stripe.ErrorCode]bool{
	stripe.ErrorCodeAccountInvalid:      true,
	stripe.ErrorCodeTransfersNotAllowed: true,
}

// classify returns what err, from CreateTransfer, means for its key, and a
// short code for the payout's last_error (or failure_code).
//
// An error that is not Stripe's answer (a timeout, a reset connection, the
// context ending) is unanswered. Among Stripe's answers, only those known to
// come before execution keep the key; anything else counts as spent, the
// safe side: a spent key only costs a listing of the transfer group before
// the next key, while a key wrongly kept would merely replay its refusal.
func classify(err error) (answer, string) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return unanswered, "no_answer"
	}
	code := string(se.Code)
	if code == "" {
		code = string(se.Type)
	}
	switch {
	case refusalCodes[se.Code]:
		return refused, code
	case se.Code == stripe.ErrorCodeIdempotencyKeyInUse:
		return unanswered, code
	case se.HTTPStatusCode == http.StatusTooManyRequests:
		return unanswered, code
	case se.HTTPStatusCode == http.StatusConflict && se.Type != stripe.ErrorTypeIdempotency:
		return unanswered, code // a lock conflict: nothing executed
	}
	return spent, code
}
