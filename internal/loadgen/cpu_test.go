package loadgen

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// burn uses CPU for about d.
func burn(d time.Duration) {
	sum := sha256.Sum256(nil)
	for end := time.Now().Add(d); time.Now().Before(end); {
		sum = sha256.Sum256(sum[:])
	}
}

// The meter reads this process's CPU time from /proc, and another's from
// its /metrics; a run's CPU per request is the difference over the run.
func TestCPUMeter(t *testing.T) {
	m := cpuMeter{PID: os.Getpid()}
	res, err := measureCPU(m, func() (Result, error) {
		burn(200 * time.Millisecond)
		return Result{Requests: 10}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 200 ms of CPU over 10 requests is ~20 ms each; /proc counts in 10 ms
	// ticks and the scheduler may give the loop less than all of it.
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
