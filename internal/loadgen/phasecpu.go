package loadgen

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uptrace/bun"
)

// PhaseCPU is what one measured drain cost in CPU per event: the bench
// process's own (the processor group and the embedded broker for a
// processor drain, the client for the SQL baseline and the COPY ceiling),
// and the Postgres server's over the same phase.
type PhaseCPU struct {
	BenchUSPerEvent float64 `json:"bench_cpu_us_per_event"`
	// PostgresUSPerEvent is null when the server's processes cannot be
	// read (another machine, another PID namespace, /proc hidden);
	// PostgresNote says why.
	PostgresUSPerEvent *float64 `json:"postgres_cpu_us_per_event"`
	PostgresNote       string   `json:"postgres_cpu_note,omitempty"`
}

// String formats c for the report line of its result.
func (c PhaseCPU) String() string {
	pg := "n/a"
	if c.PostgresUSPerEvent != nil {
		pg = fmt.Sprintf("%.0f µs", *c.PostgresUSPerEvent)
	}
	return fmt.Sprintf("CPU/event: bench %.0f µs, postgres %s", c.BenchUSPerEvent, pg)
}

// CPUSampler reads the CPU time used so far by this process (getrusage)
// and by the local Postgres server: every process of its postmaster, found
// as the parent of one of its backends. The server's count is server-wide:
// other clients of the same server add to it, so it is quotable only on a
// quiet machine.
type CPUSampler struct {
	postmaster int    // 0: the server's processes are not readable
	note       string // why not
}

// cpuSample is one reading of a CPUSampler.
type cpuSample struct {
	self, server time.Duration
	serverOK     bool
}

// NewCPUSampler finds the postmaster of db's server. A server it cannot
// read is no error: the Postgres column then says n/a.
func NewCPUSampler(ctx context.Context, db bun.IDB) CPUSampler {
	var backend int
	if err := db.NewRaw("SELECT pg_backend_pid()").Scan(ctx, &backend); err != nil {
		return CPUSampler{note: "pg_backend_pid: " + err.Error()}
	}
	st, err := readStat(backend)
	if err != nil {
		return CPUSampler{note: fmt.Sprintf("backend %d not in this machine's /proc (remote server?)", backend)}
	}
	pm, err := readStat(st.ppid)
	if err != nil || !strings.HasPrefix(pm.comm, "postgres") && pm.comm != "postmaster" {
		return CPUSampler{note: fmt.Sprintf("parent %d of backend %d is not a readable postmaster", st.ppid, backend)}
	}
	return CPUSampler{postmaster: st.ppid}
}

// sample reads both counters now.
func (s CPUSampler) sample() cpuSample {
	var c cpuSample
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if s.postmaster > 0 {
		d, err := serverCPU(s.postmaster)
		c.server, c.serverOK = d, err == nil
	}
	return c
}

// perEvent is the CPU used between a (before) and b (after) per event.
func (s CPUSampler) perEvent(a, b cpuSample, events int) *PhaseCPU {
	if events < 1 {
		return nil
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(events) }
	c := &PhaseCPU{BenchUSPerEvent: us(b.self - a.self), PostgresNote: s.note}
	if a.serverOK && b.serverOK {
		v := us(b.server - a.server)
		c.PostgresUSPerEvent = &v
		c.PostgresNote = fmt.Sprintf("server-wide: postmaster %d and its children", s.postmaster)
	} else if c.PostgresNote == "" {
		c.PostgresNote = "server processes not readable"
	}
	return c
}

// measurePhase runs f and attaches the CPU per event of its phase to the
// result it returns (per successful request).
func (s CPUSampler) measurePhase(f func() (Result, error)) (Result, error) {
	before := s.sample()
	res, err := f()
	res.CPU = s.perEvent(before, s.sample(), res.Requests)
	return res, err
}

// procStat is what serverCPU reads of one /proc/<pid>/stat.
type procStat struct {
	comm                         string
	ppid                         int
	utime, stime, cutime, cstime time.Duration
}

// readStat parses /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// parseStat parses the text of a /proc/<pid>/stat. The command name (field
// 2) may hold spaces and parentheses; the fields after its last closing
// parenthesis are fixed: ppid is field 4, utime 14, stime 15, cutime 16,
// cstime 17 (in USER_HZ ticks).
func parseStat(s string) (procStat, error) {
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return procStat{}, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	var n [5]int64
	for k, idx := range []int{1, 11, 12, 13, 14} { // ppid, utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat: field %d %q", idx+3, f[idx])
		}
		n[k] = v
	}
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / userHZ }
	return procStat{comm: s[i+1 : j], ppid: int(n[0]), utime: tick(n[1]), stime: tick(n[2]), cutime: tick(n[3]), cstime: tick(n[4])}, nil
}

// serverCPU is the CPU time the server of postmaster pm has used: its own,
// that of its children that ended (cutime, cstime: the postmaster reaps
// every backend), and that of its live children. A backend that ends
// between two readings moves from the last term to the second, so the
// difference of two readings counts it once.
func serverCPU(pm int) (time.Duration, error) {
	p, err := readStat(pm)
	if err != nil {
		return 0, err
	}
	total := p.utime + p.stime + p.cutime + p.cstime
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		c, err := readStat(pid)
		if err != nil || c.ppid != pm {
			continue // gone since the listing, or not the server's
		}
		total += c.utime + c.stime
	}
	return total, nil
}
