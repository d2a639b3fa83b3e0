package loadgen

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture Go supports).
const userHZ = 100

// cpuMeter reads the CPU time (utime + stime) a process has used so far:
// from /proc/<pid>/stat when PID is set, else process_cpu_seconds_total of
// its /metrics (the Prometheus process collector reads the same /proc
// fields). The edge and its embedded broker are one process under
// `paystream dev`, so what it measures there is the two together.
type cpuMeter struct {
	PID        int
	MetricsURL string
}

func (m cpuMeter) enabled() bool { return m.PID > 0 || m.MetricsURL != "" }

// read returns the process's CPU time so far.
func (m cpuMeter) read() (time.Duration, error) {
	if m.PID > 0 {
		return procCPU(m.PID)
	}
	return metricsCPU(m.MetricsURL)
}

// procCPU reads utime + stime of pid from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis are fixed: state is field 3, utime 14, stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// metricsCPU reads process_cpu_seconds_total from a /metrics URL.
func metricsCPU(url string) (time.Duration, error) {
	resp, err := http.Get(url) //nolint:noctx // short-lived local scrape
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total ")
		if !ok {
			continue
		}
		sec, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: process_cpu_seconds_total %q: %w", url, v, err)
		}
		return time.Duration(sec * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no process_cpu_seconds_total", url)
}

// measureCPU runs f and sets its result's CPU per successful request of
// the process m reads (nothing when m is off or cannot be read).
func measureCPU(m cpuMeter, f func() (Result, error)) (Result, error) {
	if !m.enabled() {
		return f()
	}
	before, berr := m.read()
	res, err := f()
	after, aerr := m.read()
	if berr == nil && aerr == nil && res.Requests > 0 {
		res.CPUPerRequest = (after - before) / time.Duration(res.Requests)
	}
	return res, err
}
