package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The README's membership, driven through the built binary in the dev mode
// (no Stripe key): seed, then `send subscription-lifecycle`; the processor
// applies all of it — its workers reorder the first events, the invoice
// waits for its subscription — and the membership ends canceled, its three
// invoices split, its six events in the outbox, nothing dead-lettered.
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
	out := cli("send", "subscription-lifecycle", "--customer", demo.CustomerID, "--url", webhook, "--data-dir", dataDir)
	if strings.Count(out, "-> 200") != 13 {
		t.Fatalf("send: %s", out)
	}

	ctx := context.Background()
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var sub model.Subscription
	testenv.Eventually(t, 60*time.Second, "the membership to end canceled", func() bool {
		err := bdb.NewSelect().Model(&sub).Where("customer_id = ?", demo.CustomerID).Scan(ctx)
		return err == nil && sub.Status == model.SubscriptionCanceled && sub.ExpiredAt != nil
	})
	testenv.Eventually(t, 60*time.Second, "three invoices and six subscription events", func() bool {
		invs, err1 := bdb.NewSelect().Table("subscription_invoices").Where("subscription_id = ?", sub.ID).Count(ctx)
		evs, err2 := bdb.NewSelect().Table("outbox").Where("subject LIKE 'subscriptions.%'").Count(ctx)
		return err1 == nil && err2 == nil && invs == 3 && evs == 6
	})
	if sub.PlanID.String() != demo.CreatorPlanID || sub.AccessUntil != nil {
		t.Errorf("membership %+v", sub)
	}
	if st := cli("status"); !strings.Contains(st, "dead letters: 0") {
		t.Errorf("status after the membership:\n%s\ndev stderr:\n%s", st, stderr.String())
	}
}
