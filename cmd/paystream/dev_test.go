package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// buildCLI compiles this command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "paystream")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// banner reads `paystream dev`'s stdout until the banner is complete and
// returns its "label: value" lines.
func banner(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	got := map[string]string{}
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before its banner was complete; got %v", got)
			}
			if k, v, found := strings.Cut(strings.TrimSpace(l), ":"); found {
				got[k] = strings.TrimSpace(v)
			}
			if _, done := got["try"]; done {
				go func() { // keep draining so dev never blocks on stdout
					for range lines {
					}
				}()
				return got
			}
		case <-deadline:
			t.Fatalf("no complete banner after 60s; got %v", got)
		}
	}
}

// The README's path, driven through the built binary: dev starts everything
// on random ports (the purchase API too, STRIPE_SECRET_KEY being set, with a
// generated key), seed + send make a purchase, a purchases.completed event
// reaches PURCHASES, and the API's access check says yes.
func TestDevSeedSendMakesAPurchase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dsn := testenv.PostgresURL(t)
	bin := buildCLI(t)
	dataDir := t.TempDir()
	fake := apitest.NewStripe(t)
	env := append(os.Environ(), "DATABASE_URL="+dsn, "LOG_LEVEL=warn", "STRIPE_WEBHOOK_SECRET=", "API_KEYS=",
		"STRIPE_SECRET_KEY="+fake.Key, "STRIPE_API_BASE="+fake.URL())

	dev := exec.Command(bin, "dev", "--data-dir", dataDir, "--nats-port", "0", "--edge-addr", "127.0.0.1:0",
		"--edge-admin-addr", "127.0.0.1:0", "--processor-admin-addr", "127.0.0.1:0",
		"--api-addr", "127.0.0.1:0", "--api-admin-addr", "127.0.0.1:0")
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
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() {
		_ = dev.Process.Kill()
		<-exited
	})
	b := banner(t, stdout)
	webhook := strings.TrimPrefix(b["webhooks"], "POST ")
	natsURL := strings.Fields(b["nats"])[0]
	if !strings.HasPrefix(webhook, "http://127.0.0.1:") || !strings.HasPrefix(natsURL, "nats://127.0.0.1:") {
		t.Fatalf("banner = %v", b)
	}
	if !strings.Contains(b["signing secret"], "generated") {
		t.Errorf("dev did not report a generated secret: %q", b["signing secret"])
	}

	// A downstream consumer of PURCHASES, as a team consuming events would run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan streams.PurchaseEvent, 4)
	cc, err := streams.SubscribePurchases(ctx, js, "dev-test", func(_ context.Context, ev streams.PurchaseEvent) error {
		got <- ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

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
	out := cli("send", "checkout.session.completed", "--url", webhook, "--data-dir", dataDir)
	if !strings.Contains(out, "-> 200") {
		t.Fatalf("send: %s", out)
	}

	select {
	case ev := <-got:
		if ev.Type != "com.paystream.purchase.completed.v1" || ev.Data.ContentID.String() != demo.ContentID ||
			ev.Data.AmountPaidCents != demo.PriceCents || ev.Data.CustomerID != demo.CustomerID {
			t.Errorf("purchase event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatalf("no purchases.completed event within 60s; dev stderr:\n%s", stderr.String())
	}

	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var purchases []model.Purchase
	if err := bdb.NewSelect().Model(&purchases).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(purchases) != 1 || purchases[0].Status != "completed" || purchases[0].AmountPaidCents != demo.PriceCents {
		t.Fatalf("purchases = %+v", purchases)
	}
	apiBase := strings.Fields(b["purchase api"])[0]
	apiKey := strings.Fields(b["api key"])[0]
	if !strings.HasPrefix(apiBase, "http://127.0.0.1:") || !strings.Contains(b["api key"], "generated") || len(apiKey) < 16 {
		t.Fatalf("banner without the purchase API and its generated key: %v", b)
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(apiBase, "/v1/")+"/v1/customers/"+demo.CustomerID+"/access/"+demo.ContentID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var access struct {
		Active bool `json:"active"`
	}
	err = json.NewDecoder(res.Body).Decode(&access)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || !access.Active {
		t.Errorf("GET access through dev's API = %d %+v (%v), want 200 active", res.StatusCode, access, err)
	}
	if st := cli("status"); !strings.Contains(st, "dead letters: 0") {
		t.Errorf("status after a good purchase:\n%s", st)
	}

	// Ctrl-C: a clean stop, exit code 0, and nothing to warn about (stderr
	// holds warnings only: LOG_LEVEL=warn).
	beforeStop := len(stderr.String())
	if err := dev.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("dev exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("dev did not stop within 45s of SIGINT")
	}
	stopLogs := stderr.String()[beforeStop:]
	if strings.Contains(stopLogs, `"level":"WARN"`) || strings.Contains(stopLogs, `"level":"ERROR"`) {
		t.Errorf("a graceful stop logged warnings:\n%s", stopLogs)
	}
}
