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
	// It counts the server's background processes (WAL writer,
	// checkpointer, …) and the backends of the bench's database, so other
	// databases' clients on the same server do not add to it.
	PostgresUSPerEvent *float64 `json:"postgres_cpu_us_per_event"`
	// PostgresServerUSPerEvent is every process of the server, those that
	// ended during the phase included: with the first, it shows how much
	// other clients of the server used meanwhile.
	PostgresServerUSPerEvent *float64 `json:"postgres_server_cpu_us_per_event"`
	PostgresNote             string   `json:"postgres_cpu_note,omitempty"`
}

// String formats c for the report line of its result.
func (c PhaseCPU) String() string {
	pg := "n/a"
	if c.PostgresUSPerEvent != nil {
		pg = fmt.Sprintf("%.0f µs", *c.PostgresUSPerEvent)
	}
	if c.PostgresServerUSPerEvent != nil {
		pg += fmt.Sprintf(" (server-wide %.0f µs)", *c.PostgresServerUSPerEvent)
	}
	return fmt.Sprintf("CPU/event: bench %.0f µs, postgres %s", c.BenchUSPerEvent, pg)
}

// CPUSampler reads the CPU time used so far by this process (getrusage)
// and by the local Postgres server, whose postmaster it finds as the parent
// of one of its backends: the postmaster's own, its background processes'
// and the backends of database (told from the others by their process
// titles), and, server-wide, every process of the postmaster. The
// database's count misses a backend that starts and ends within a phase
// (the bench's pools keep theirs); the server-wide count misses nothing but
// includes other clients' work.
type CPUSampler struct {
	postmaster int    // 0: the server's processes are not readable
	database   string // the bench's database
	note       string // why not
}

// cpuSample is one reading of a CPUSampler.
type cpuSample struct {
	self, server, scoped time.Duration
	serverOK             bool
}

// NewCPUSampler finds the postmaster of db's server. A server it cannot
// read is no error: the Postgres column then says n/a.
func NewCPUSampler(ctx context.Context, db bun.IDB) CPUSampler {
	var backend int
	var database string
	if err := db.NewRaw("SELECT pg_backend_pid(), current_database()").Scan(ctx, &backend, &database); err != nil {
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
	if title, ok := backendOf(procTitle(backend)); !ok || title != database {
		return CPUSampler{note: fmt.Sprintf("backend %d's process title names no database (update_process_title off?)", backend)}
	}
	return CPUSampler{postmaster: st.ppid, database: database}
}

// sample reads both counters now.
func (s CPUSampler) sample() cpuSample {
	var c cpuSample
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if s.postmaster > 0 {
		var err error
		c.server, c.scoped, err = serverCPU(s.postmaster, s.database)
		c.serverOK = err == nil
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
		scoped, all := us(b.scoped-a.scoped), us(b.server-a.server)
		c.PostgresUSPerEvent, c.PostgresServerUSPerEvent = &scoped, &all
		c.PostgresNote = fmt.Sprintf("postmaster %d: background processes and the backends of %s; server-wide: every process", s.postmaster, s.database)
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

// serverCPU is the CPU time the server of postmaster pm has used: all of
// it, and the part of the processes that count for database. All of it is
// the postmaster's own, that of its children that ended (cutime, cstime:
// the postmaster reaps every backend) and that of its live children: a
// backend that ends between two readings moves from the last term to the
// second, so the difference of two readings counts it once. The database's
// part is the postmaster's own, and its live children's but for the client
// backends of other databases.
func serverCPU(pm int, database string) (all, scoped time.Duration, err error) {
	p, err := readStat(pm)
	if err != nil {
		return 0, 0, err
	}
	scoped = p.utime + p.stime
	all = scoped + p.cutime + p.cstime
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
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
		all += c.utime + c.stime
		if db, ok := backendOf(procTitle(pid)); !ok || db == database {
			scoped += c.utime + c.stime
		}
	}
	return all, scoped, nil
}

// procTitle is the process title of pid (its command line as the process
// set it), "" when unreadable.
func procTitle(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// backendOf reads a Postgres process title: for a client backend
// ("postgres: [cluster: ]user database host(port)|[local] activity") it
// returns the database and true; for a background process (walwriter,
// checkpointer, autovacuum, …) false.
func backendOf(title string) (string, bool) {
	rest, ok := strings.CutPrefix(title, "postgres: ")
	if !ok {
		return "", false
	}
	f := strings.Fields(rest)
	if len(f) > 0 && strings.HasSuffix(f[0], ":") { // cluster_name
		f = f[1:]
	}
	if len(f) < 3 || !(f[2] == "[local]" || strings.HasSuffix(f[2], ")") && strings.Contains(f[2], "(")) {
		return "", false
	}
	return f[1], true
}
