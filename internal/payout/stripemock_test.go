package payout_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/transfer"

	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/testenv"
)

// Every request the payout package sends through stripe-go — a transfer
// with its idempotency key, transfer group and metadata, the two transfer
// listings, an Express account with the transfers capability and metadata,
// an Account Link — is one Stripe's schema accepts.
func TestRequestShapesAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t)
	s, err := payout.NewStripe(stripeclient.Config{Key: "sk_test_123", APIBase: base}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, err := s.CreateTransfer(ctx, payout.TransferRequest{Amount: 1234, Currency: "usd", Destination: "acct_123",
		TransferGroup: "payout:0191c0de-0000-7000-8000-000000000001", Description: "paystream payout",
		Metadata: map[string]string{payout.MetadataPayoutID: "0191c0de-0000-7000-8000-000000000001"}},
		"payout:0191c0de-0000-7000-8000-000000000001")
	if err != nil || !strings.HasPrefix(tr.ID, "tr_") {
		t.Fatalf("create transfer: %+v, %v", tr, err)
	}
	if _, err := s.TransfersInGroup(ctx, "payout:x"); err != nil {
		t.Fatalf("list by group: %v", err)
	}
	if err := s.ListTransfers(ctx, time.Now().Add(-72*time.Hour), func(payout.Transfer) error { return nil }); err != nil {
		t.Fatalf("list since: %v", err)
	}
	acct, err := s.CreateExpressAccount(ctx, payout.AccountRequest{PayeeKind: "creator", PayeeID: "c1", Country: "US"}, "payee:creator:c1:account")
	if err != nil || !strings.HasPrefix(acct, "acct_") {
		t.Fatalf("create account: %q, %v", acct, err)
	}
	link, err := s.CreateAccountLink(ctx, acct, "https://app.example/refresh", "https://app.example/return")
	if err != nil || link.URL == "" || link.ExpiresAt.IsZero() {
		t.Fatalf("account link: %+v, %v", link, err)
	}
	// The acceptances above mean something only because stripe-mock does
	// refuse what Stripe refuses: a transfer with a bad source_type is a 400.
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(base),
		MaxNetworkRetries: stripe.Int64(0), EnableTelemetry: stripe.Bool(false),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	_, err = transfer.Client{B: b, Key: "sk_test_123"}.New(&stripe.TransferParams{Amount: stripe.Int64(1),
		Currency: stripe.String("usd"), Destination: stripe.String("acct_123"), SourceType: stripe.String("barter")})
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		t.Errorf("stripe-mock accepted source_type=barter: %v", err)
	}
}
