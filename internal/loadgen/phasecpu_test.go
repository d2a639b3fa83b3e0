package loadgen

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/testenv"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis; ticks are USER_HZ.
	line := "42 (post gres: a) b) S 7 42 42 0 -1 4194304 1 2 3 4 150 50 20 30 20 0 1 0 2940 1 2 3"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{comm: "post gres: a) b", ppid: 7, utime: 1500 * time.Millisecond, stime: 500 * time.Millisecond,
		cutime: 200 * time.Millisecond, cstime: 300 * time.Millisecond}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	if _, err := parseStat("42 (x) S 7 1 2"); err == nil {
		t.Error("a short line parsed")
	}
}

// The per-event figures are the differences of two samples over the
// events, in µs; a server that could not be read is n/a, not zero.
func TestPhaseCPUPerEvent(t *testing.T) {
	s := CPUSampler{postmaster: 1}
	c := s.perEvent(cpuSample{self: time.Second, server: 2 * time.Second, scoped: time.Second, serverOK: true},
		cpuSample{self: 3 * time.Second, server: 6 * time.Second, scoped: 4 * time.Second, serverOK: true}, 1000)
	if c.BenchUSPerEvent != 2000 || c.PostgresUSPerEvent == nil || *c.PostgresUSPerEvent != 3000 ||
		c.PostgresServerUSPerEvent == nil || *c.PostgresServerUSPerEvent != 4000 {
		t.Fatalf("perEvent = %+v", c)
	}
	if got := c.String(); got != "CPU/event: bench 2000 µs, postgres 3000 µs (server-wide 4000 µs)" {
		t.Errorf("String() = %q", got)
	}
	n := CPUSampler{note: "remote"}.perEvent(cpuSample{}, cpuSample{self: time.Millisecond}, 10)
	if n.PostgresUSPerEvent != nil || n.PostgresServerUSPerEvent != nil || n.PostgresNote != "remote" || n.BenchUSPerEvent != 100 {
		t.Errorf("unreadable server: %+v", n)
	}
	if got := n.String(); got != "CPU/event: bench 100 µs, postgres n/a" {
		t.Errorf("String() = %q", got)
	}
}

func TestBackendOf(t *testing.T) {
	for title, want := range map[string]string{
		"postgres: 15/main: postgres paystream_bench_x 127.0.0.1(58816) COMMIT": "paystream_bench_x",
		"postgres: app shop [local] idle":                                       "shop",
		"postgres: bob db ::1(5000) SELECT":                                     "db",
		"postgres: 15/main: walwriter":                                          "",
		"postgres: checkpointer":                                                "",
		"postgres: 15/main: autovacuum worker paystream_bench_x":                "",
		"postgres: 15/main: logical replication launcher":                       "",
		"sh -c loop": "",
	} {
		db, ok := backendOf(title)
		if db != want || ok != (want != "") {
			t.Errorf("backendOf(%q) = %q, %v; want %q", title, db, ok, want)
		}
	}
}

// serverCPU counts a process tree: a child's CPU while it runs and, once
// its parent reaped it, through the parent's cutime/cstime, never less
// afterwards. This process stands for the postmaster.
func TestServerCPUCountsLiveAndReapedChildren(t *testing.T) {
	self := os.Getpid()
	start, _, err := serverCPU(self, "")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	live, _, err := serverCPU(self, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	reaped, _, err := serverCPU(self, "")
	if err != nil {
		t.Fatal(err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if child < 50*time.Millisecond {
		t.Fatalf("the child used only %s; the loop is too short to test with", child)
	}
	if live < start {
		t.Errorf("live reading %s < start %s", live, start)
	}
	// /proc counts in 10 ms ticks.
	if reaped-start < child-20*time.Millisecond {
		t.Errorf("tree CPU grew %s while the child alone used %s", reaped-start, child)
	}
	if reaped < live {
		t.Errorf("reading fell from %s to %s when the child was reaped", live, reaped)
	}
}

// Against the tests' Postgres: when its backends are in this machine's
// /proc, the sampler finds the postmaster and a CPU-heavy query shows up
// in the server's count; otherwise the server is n/a with the reason.
func TestCPUSamplerReadsTheLocalServer(t *testing.T) {
	ctx := context.Background()
	bdb, _ := testenv.DB(t)
	var backend int
	if err := bdb.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &backend); err != nil {
		t.Fatal(err)
	}
	s := NewCPUSampler(ctx, bdb)
	if _, err := os.Stat("/proc/" + strconv.Itoa(backend)); err != nil {
		if s.postmaster != 0 || s.note == "" {
			t.Fatalf("remote server: sampler = %+v, want n/a with a note", s)
		}
		return
	}
	if s.postmaster == 0 {
		t.Fatalf("local server not found: %s", s.note)
	}
	before := s.sample()
	if _, err := bdb.ExecContext(ctx, "SELECT count(*) FROM generate_series(1, 4000000)"); err != nil {
		t.Fatal(err)
	}
	c := s.perEvent(before, s.sample(), 1)
	if c.PostgresUSPerEvent == nil || *c.PostgresUSPerEvent < 50_000 || *c.PostgresServerUSPerEvent < *c.PostgresUSPerEvent {
		t.Errorf("server CPU of a 4M-row count = %+v, want at least 50 ms in both", c)
	}
	// The same query in another database counts server-wide only.
	other, _ := testenv.DB(t)
	before = s.sample()
	if _, err := other.ExecContext(ctx, "SELECT count(*) FROM generate_series(1, 4000000)"); err != nil {
		t.Fatal(err)
	}
	c = s.perEvent(before, s.sample(), 1)
	if c.PostgresServerUSPerEvent == nil || *c.PostgresServerUSPerEvent-*c.PostgresUSPerEvent < 50_000 {
		t.Errorf("another database's query: %+v, want at least 50 ms more server-wide than in this database's", c)
	}
}
