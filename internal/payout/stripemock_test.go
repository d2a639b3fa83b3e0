package payout_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/transfer"

	"github.com/paystream/paystream/internal/payout"
)

// startStripeMock runs stripe-mock (pinned in go.mod with the tool
// directive) on a random local port and returns its base URL. stripe-mock
// validates every request against Stripe's OpenAPI schema, which proves the
// requests stripe-go sends for the engine and onboarding are ones Stripe
// accepts; it keeps no state, which is what stripefake is for.
func startStripeMock(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts stripe-mock")
	}
	out, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool -n stripe-mock: %v", err)
		}
		t.Skipf("stripe-mock not available: %v", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(out)), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not report its HTTP address within 30s")
		return ""
	}
}

// Every request the payout package sends through stripe-go — a transfer
// with its idempotency key, transfer group and metadata, the two transfer
// listings, an Express account with the transfers capability and metadata,
// an Account Link — is one Stripe's schema accepts.
func TestRequestShapesAgainstStripeMock(t *testing.T) {
	base := startStripeMock(t)
	s, err := payout.NewStripe(payout.StripeConfig{Key: "sk_test_123", APIBase: base}, testLogger(t))
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
