package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The README's membership, driven through the built binary in the dev mode
// (no Stripe key): seed, then `send subscription-lifecycle` (spaced as the
// README sends it, and once unspaced, when the processor's workers reorder
// neighbours and an invoice waits for its subscription); each membership
// ends canceled, its three invoices split, its end announced, and nothing is
// dead-lettered. Spaced, each change is announced: started, renewed,
// past_due, renewed, canceled, expired.
func TestDevWalksAMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := testenv.PostgresURL(t)
	bin := buildCLI(t)
	dataDir := t.TempDir()
	env := append(os.Environ(), "DATABASE_URL="+dsn, "LOG_LEVEL=warn", "STRIPE_WEBHOOK_SECRET=", "STRIPE_SECRET_KEY=", "API_KEYS=")
	dev := exec.Command(bin, "dev", "--data-dir", dataDir, "--nats-port", "0", "--edge-addr", "127.0.0.1:0",
		"--edge-admin-addr", "127.0.0.1:0", "--processor-admin-addr", "127.0.0.1:0", "--no-api")
	dev.Env = env
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(testenv.LogBuffer)
	dev.Stderr = stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dev.Process.Kill()
		_ = dev.Wait()
	})
	ctx := context.Background()
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	b := banner(t, stdout)
	webhook := strings.TrimPrefix(b["webhooks"], "POST ")
	natsURL := strings.Fields(b["nats"])[0]
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "NATS_URL="+natsURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("paystream %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	cli("seed")
	for _, every := range []string{"300ms", "0s"} {
		customer := demo.CustomerID
		if every == "0s" {
			customer = "user_unspaced"
		}
		out := cli("send", "subscription-lifecycle", "--customer", customer, "--every", every, "--url", webhook, "--data-dir", dataDir)
		if strings.Count(out, "-> 200") != 13 {
			t.Fatalf("send: %s", out)
		}
		walked(t, ctx, bdb, customer, every == "300ms", cli, stderr)
	}
	if st := cli("status"); !strings.Contains(st, "dead letters: 0") {
		t.Errorf("status after the memberships:\n%s\ndev stderr:\n%s", st, stderr.String())
	}
}

// walked waits until customer's membership has ended as the lifecycle ends
// it, and checks its events (all of them when spaced).
func walked(t *testing.T, ctx context.Context, bdb *bun.DB, customer string, spaced bool, cli func(...string) string, stderr *testenv.LogBuffer) {
	t.Helper()
	var sub model.Subscription
	var invs int64
	var kinds []string
	done := func() bool {
		// A fresh struct each poll: scanning NULL into a pointer field an
		// earlier poll set leaves it pointing at a zero time, not nil.
		sub = model.Subscription{}
		err := bdb.NewSelect().Model(&sub).Where("customer_id = ?", customer).Scan(ctx)
		if err != nil || sub.Status != model.SubscriptionCanceled || sub.ExpiredAt == nil {
			return false
		}
		if invs, err = bdb.NewSelect().Table("subscription_invoices").Where("subscription_id = ?", sub.ID).Count(ctx); err != nil {
			return false
		}
		kinds = kinds[:0]
		err = bdb.NewRaw("SELECT split_part(subject, '.', 2) FROM outbox WHERE aggregate_id = ? ORDER BY created_at, id",
			subscription.AggregateID(sub.ID)).Scan(ctx, &kinds)
		if err != nil || invs != 3 || !slices.Contains(kinds, subscription.EventExpired) {
			return false
		}
		return !spaced || strings.Join(kinds, " ") == "started renewed past_due renewed canceled expired"
	}
	// An invoice that overtook its subscription's first event waits for it
	// on the processor's retry schedule (1s, 5s, 15s, …).
	deadline := time.Now().Add(90 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			var outcomes []string
			_ = bdb.NewRaw("SELECT type || ' ' || outcome FROM stripe_events ORDER BY processed_at").Scan(ctx, &outcomes)
			t.Fatalf("after 90s: subscription %+v, %d invoices, events %v; stripe_events %v\nstatus:\n%s\ndev stderr:\n%s",
				sub, invs, kinds, outcomes, cli("status"), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sub.PlanID.String() != demo.CreatorPlanID || sub.AccessUntil != nil {
		t.Errorf("membership %+v", sub)
	}
}
