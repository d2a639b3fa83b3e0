package subscription

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startStripeMock runs stripe-mock (pinned in go.mod with the tool
// directive) on a random local port and returns its base URL. stripe-mock
// checks each request against Stripe's OpenAPI description (path, method,
// parameters, authentication) and answers with a generated object, which
// is what a request-shape test needs.
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

// The refetch the production Fetcher sends is a request Stripe's API
// description accepts (stripe-mock answers it), and what comes back decodes
// as the subscription asked for.
func TestRefetchRequestShapeAgainstStripeMock(t *testing.T) {
	base := startStripeMock(t)
	f := fetcherFor(t, base, "sk_test_123", 10*time.Second)
	s, err := fetch(context.Background(), f, "sub_1QMockShape0000000001")
	if err != nil {
		t.Fatalf("refetch from stripe-mock: %v", err)
	}
	if s.ID != "sub_1QMockShape0000000001" || !knownStatus(s.Status) || s.StripeCustomerID == "" {
		t.Fatalf("decoded %+v", s)
	}
}
