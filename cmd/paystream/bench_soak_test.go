package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
)

// The soak runs the real binaries for 15 s with one fault of each kind and
// must end with every accepted checkout bought exactly once. The processors'
// ack wait is cut to 5 s so the SIGKILLed one's unacked events come back
// within the drain instead of after the production 30 s.
func TestBenchSoakHoldsThroughOneFaultOfEachKind(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binaries for about 40 s")
	}
	admin := testenv.ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	getenv := config.MapEnv(map[string]string{"DATABASE_URL": admin})
	err := runBench(ctx, []string{"soak", "--duration", "15s", "--probe", "2s", "--concurrency", "8",
		"--fault-every", "4s", "--drain", "90s", "--settle", "1s", "--env", "PROCESSOR_ACK_WAIT=5s"}, getenv, &stdout, &stderr)
	out := stdout.String()
	// The broker is judged by its live heap with an allowance for the
	// message ids its dedup window (2h) remembers, so a run that holds
	// passes whatever the machine's speed.
	if err != nil {
		t.Fatalf("bench soak: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	if !strings.Contains(out, "verdict: PASS") {
		t.Errorf("output lacks the verdict:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^broker .*dedup ids remembered \d+ → [1-9]\d*; live heap [1-9]`).MatchString(out) {
		t.Errorf("the broker's row lacks its remembered ids and live heap:\n%s", out)
	}
	// At least one fault of each kind: the load can outlast its 15 s on a
	// busy machine (refused events are retried), and the fault ticker with it.
	if !regexp.MustCompile(`pg_terminate_backend=[1-9]\d* broker_restart=[1-9]\d* processor_sigkill=[1-9]\d*`).MatchString(out) {
		t.Errorf("output lacks one fault of each kind:\n%s", out)
	}
	for _, want := range []string{
		"dead letters:       0",
		"(lost 0, doubled 0, unconfirmed 0, events unrecorded 0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("bench soak output:\n%s", out)
	// Every component has a usage row with non-zero RSS and goroutines.
	for _, name := range []string{"edge", "processor-1", "processor-2", "broker", "load tool"} {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\S*(?: \S+)*\s+[1-9][\d.]* MiB\s+[1-9][\d.]* MiB\s+[1-9]\d*\s+[1-9]\d*`)
		if !row.MatchString(out) {
			t.Errorf("no usage row for %s:\n%s", name, out)
		}
	}
	// Purchases equal the accepted sessions, and duplicates were sent.
	m := regexp.MustCompile(`events accepted:\s+(\d+) distinct event ids, (\d+) checkout sessions`).FindStringSubmatch(out)
	p := regexp.MustCompile(`purchases:\s+(\d+) `).FindStringSubmatch(out)
	if m == nil || p == nil || m[2] != p[1] || m[2] == "0" {
		t.Errorf("purchases %v do not match accepted sessions %v:\n%s", p, m, out)
	}
	if d := regexp.MustCompile(`duplicates sent:\s+(\d+) same event id`).FindStringSubmatch(out); d == nil || d[1] == "0" {
		t.Errorf("no duplicates sent:\n%s", out)
	}
}

func TestBenchSoakRejectsBadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := runBench(context.Background(), []string{"soak", "--env", "NOEQUALS"}, config.MapEnv(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String()+err.Error(), "KEY=VALUE") {
		t.Fatalf("want a KEY=VALUE error, got %v / %s", err, stderr.String())
	}
}
