package payout

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

func TestClassify(t *testing.T) {
	se := func(status int, typ stripe.ErrorType, code stripe.ErrorCode) error {
		return &stripe.Error{HTTPStatusCode: status, Type: typ, Code: code}
	}
	tests := []struct {
		name string
		err  error
		want answer
		code string
	}{
		{"timeout", &url.Error{Op: "Post", URL: "x", Err: &net.OpError{Op: "dial", Err: errors.New("i/o timeout")}}, unanswered, "no_answer"},
		{"context", context.DeadlineExceeded, unanswered, "no_answer"},
		{"429 rate limit", se(429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit), unanswered, "rate_limit"},
		{"409 key in use", se(409, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeIdempotencyKeyInUse), unanswered, "idempotency_key_in_use"},
		{"409 lock", se(409, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeLockTimeout), unanswered, "lock_timeout"},
		{"409 key with other parameters", se(409, stripe.ErrorTypeIdempotency, ""), spent, "idempotency_error"},
		{"500", se(500, stripe.ErrorTypeAPI, ""), spent, "api_error"},
		{"503", se(503, stripe.ErrorTypeAPI, ""), spent, "api_error"},
		{"balance_insufficient", se(400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeBalanceInsufficient), spent, "balance_insufficient"},
		{"no such destination", se(400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing), spent, "resource_missing"},
		{"401 bad key", se(401, stripe.ErrorTypeInvalidRequest, ""), spent, "invalid_request_error"},
		{"account_invalid", se(400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeAccountInvalid), refused, "account_invalid"},
		{"transfers_not_allowed", se(400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeTransfersNotAllowed), refused, "transfers_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := classify(tt.err)
			if got != tt.want || code != tt.code {
				t.Errorf("classify = %d %q, want %d %q", got, code, tt.want, tt.code)
			}
		})
	}
}
