package loadgen

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// burn uses at least d of this process's CPU time. It counts CPU time, not
// wall time: on a loaded machine a loop timed by the clock gets only a share
// of a core, and the meter would rightly report less than d.
func burn(t *testing.T, d time.Duration) {
	t.Helper()
	start := processCPU(t)
	sum := sha256.Sum256(nil)
	for processCPU(t)-start < d {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The meter reads this process's CPU time from /proc, and another's from
// its /metrics; a run's CPU per request is the difference over the run.
func TestCPUMeter(t *testing.T) {
	m := cpuMeter{PID: os.Getpid()}
	res, err := measureCPU(m, func() (Result, error) {
		burn(t, 200*time.Millisecond)
		return Result{Requests: 10}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// At least 200 ms of CPU over 10 requests is ~20 ms each; /proc counts
	// in 10 ms ticks, and other goroutines of the test binary add some.
	if res.CPUPerRequest < 5*time.Millisecond || res.CPUPerRequest > 200*time.Millisecond {
		t.Errorf("CPU per request = %s, want about 20ms", res.CPUPerRequest)
	}

	cpu := 1.5
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
	}))
	defer srv.Close()
	res, err = measureCPU(cpuMeter{MetricsURL: srv.URL}, func() (Result, error) {
		cpu += 0.25 // the process used 250 ms during the run
		return Result{Requests: 1000}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.CPUPerRequest != 250*time.Microsecond {
		t.Errorf("CPU per request from /metrics = %s, want 250µs", res.CPUPerRequest)
	}
	if got := res.String(); !strings.Contains(got, "CPU 250 µs/event") {
		t.Errorf("String() = %q lacks the CPU per event", got)
	}
}
