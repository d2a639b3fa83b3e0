package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// StripeMock runs stripe-mock (pinned in go.mod with the tool directive) on
// a random local port for the test and returns its base URL. stripe-mock
// validates every request against Stripe's OpenAPI schema (unknown
// parameters, bad enums), which proves a request stripe-go sends is one
// Stripe accepts; it keeps no state. Under -short the test is skipped;
// without the tool it is skipped, and fails under CI=true.
func StripeMock(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts stripe-mock")
	}
	out, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("go tool -n stripe-mock: %v", err)
		}
		tb.Skipf("stripe-mock not available: %v", err)
	}
	// The binary itself, not `go tool`: an interrupt to `go tool` would
	// have to reach the child, and a kill would orphan it.
	cmd := exec.Command(strings.TrimSpace(string(out)), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
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
		tb.Fatal("stripe-mock did not report its HTTP address within 30s")
		return ""
	}
}
