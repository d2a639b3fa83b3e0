package stripefake_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/internal/stripeclient"
)

// The fake keeps Stripe's idempotency: a key replays its saved answer —
// a transfer or an error — for 24 hours, and after that a request with it
// executes anew.
func TestKeysReplayForADay(t *testing.T) {
	fake := stripefake.New(t)
	fake.AddAccount("acct_a")
	s, err := payout.NewStripe(stripeclient.Config{Key: stripefake.Key, APIBase: fake.URL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := payout.TransferRequest{Amount: 100, Currency: "usd", Destination: "acct_a", TransferGroup: "g"}
	first, err := s.CreateTransfer(ctx, req, "k")
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(23 * time.Hour)
	again, err := s.CreateTransfer(ctx, req, "k")
	if err != nil || again.ID != first.ID || fake.TransfersInGroup("g") != 1 {
		t.Fatalf("replay within a day: %+v, %v, %d transfers", again, err, fake.TransfersInGroup("g"))
	}
	fake.Advance(2 * time.Hour)
	later, err := s.CreateTransfer(ctx, req, "k")
	if err != nil || later.ID == first.ID || fake.TransfersInGroup("g") != 2 {
		t.Fatalf("after a day the key is forgotten: %+v, %v, %d transfers", later, err, fake.TransfersInGroup("g"))
	}

	// A saved refusal replays too, even when the fault is gone.
	fake.FailNext(stripefake.BalanceInsufficient)
	req.TransferGroup = "h"
	for range 2 {
		_, err := s.CreateTransfer(ctx, req, "k2")
		var se *stripe.Error
		if !errors.As(err, &se) || se.Code != stripe.ErrorCodeBalanceInsufficient {
			t.Fatalf("want the saved balance_insufficient, got %v", err)
		}
	}
	if fake.TransfersInGroup("h") != 0 {
		t.Fatal("a replayed refusal made a transfer")
	}
	// A refusal before execution (429) is not saved: the same key then works.
	fake.FailNext(stripefake.RateLimit)
	if _, err := s.CreateTransfer(ctx, req, "k3"); err == nil {
		t.Fatal("the 429 was not answered")
	}
	if _, err := s.CreateTransfer(ctx, req, "k3"); err != nil || fake.TransfersInGroup("h") != 1 {
		t.Fatalf("after a 429 the same key: %v, %d transfers", err, fake.TransfersInGroup("h"))
	}
}
