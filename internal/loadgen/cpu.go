package loadgen

import (
	"context"
	"os"
	"time"
)

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

// metricsCPU reads process_cpu_seconds_total from a /metrics URL.
func metricsCPU(url string) (time.Duration, error) {
	sec, err := scrape(context.Background(), url, "process_cpu_seconds_total ")
	if err != nil {
		return 0, err
	}
	return time.Duration(sec * float64(time.Second)), nil
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

// measureCPUs is measureCPU of server (the process under test, when
// enabled) that also sets the result's ClientCPUPerRequest: the CPU time
// this process (the load client) used over the run per successful request.
func measureCPUs(server cpuMeter, f func() (Result, error)) (Result, error) {
	self := cpuMeter{PID: os.Getpid()}
	before, berr := self.read()
	res, err := measureCPU(server, f)
	after, aerr := self.read()
	if berr == nil && aerr == nil && res.Requests > 0 {
		res.ClientCPUPerRequest = (after - before) / time.Duration(res.Requests)
	}
	return res, err
}
