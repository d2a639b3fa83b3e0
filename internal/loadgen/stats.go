// Package loadgen drives paystream with realistic signed Stripe events and
// measures it beside its physical baselines in the same run: plain JetStream
// publishes for the edge, plain SQL transactions for the processor.
package loadgen

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Result is one measured run.
type Result struct {
	Name        string         `json:"name"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	ByStatus    map[string]int `json:"by_status,omitempty"`
	Elapsed     time.Duration  `json:"elapsed_ns"`
	PerSecond   float64        `json:"per_second"`
	P50         time.Duration  `json:"p50_ns"`
	P90         time.Duration  `json:"p90_ns"`
	P99         time.Duration  `json:"p99_ns"`
	Max         time.Duration  `json:"max_ns"`
	PeakRSS     uint64         `json:"peak_rss_bytes,omitempty"`
	// CPUPerRequest is the CPU time (utime + stime) the process under test
	// used over the run per successful request; 0 when not measured.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns,omitempty"`
	// ClientCPUPerRequest is the CPU time the load client (the bench's own
	// process) used over the run per successful request, where the bench
	// measures it (bench api); it shares the machine with what it measures.
	ClientCPUPerRequest time.Duration `json:"client_cpu_per_request_ns,omitempty"`
	// CPU is a drain's CPU per event, of the bench process and of the
	// Postgres server; nil when not measured.
	CPU *PhaseCPU `json:"cpu,omitempty"`
}

// String formats r for humans.
func (r Result) String() string {
	s := fmt.Sprintf("%-10s c=%-3d %8d ok %6d err in %6.2fs = %9.1f/s   p50 %-9s p90 %-9s p99 %-9s max %s",
		r.Name, r.Concurrency, r.Requests, r.Errors, r.Elapsed.Seconds(), r.PerSecond,
		round(r.P50), round(r.P90), round(r.P99), round(r.Max))
	if len(r.ByStatus) > 0 {
		s += fmt.Sprintf("   status %v", r.ByStatus)
	}
	if r.PeakRSS > 0 {
		s += fmt.Sprintf("   peak RSS %.1f MiB", float64(r.PeakRSS)/(1<<20))
	}
	if r.CPUPerRequest > 0 {
		s += fmt.Sprintf("   CPU %.0f µs/event", float64(r.CPUPerRequest)/float64(time.Microsecond))
	}
	if r.ClientCPUPerRequest > 0 {
		s += fmt.Sprintf("   client CPU %.0f µs/request", float64(r.ClientCPUPerRequest)/float64(time.Microsecond))
	}
	if r.CPU != nil {
		s += "   " + r.CPU.String()
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// recorder collects latencies and status counts from many goroutines.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	byStatus  map[string]int
	errors    int
	done      int64
}

func newRecorder() *recorder { return &recorder{byStatus: map[string]int{}} }

// add records one finished request; ok says whether it counts as success.
func (r *recorder) add(lat time.Duration, status string, ok bool) {
	r.mu.Lock()
	if ok {
		r.latencies = append(r.latencies, lat)
	} else {
		r.errors++
	}
	if status != "" {
		r.byStatus[status]++
	}
	r.done++
	r.mu.Unlock()
}

func (r *recorder) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

func (r *recorder) result(name string, conc int, elapsed time.Duration) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	res := Result{Name: name, Concurrency: conc, Requests: len(lat), Errors: r.errors, Elapsed: elapsed}
	if len(r.byStatus) > 0 {
		res.ByStatus = map[string]int{}
		for k, v := range r.byStatus {
			res.ByStatus[k] = v
		}
	}
	if elapsed > 0 {
		res.PerSecond = float64(len(lat)) / elapsed.Seconds()
	}
	if n := len(lat); n > 0 {
		res.P50, res.P90, res.P99, res.Max = lat[n*50/100], lat[n*90/100], lat[n*99/100], lat[n-1]
	}
	return res
}

// startProgress prints a live line of rec to w every second until the
// returned stop is called; stop returns after the line's last write, so
// the caller may write to w again at once.
func startProgress(w io.Writer, name string, rec *recorder) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		progress(w, name, rec, quit)
	}()
	return func() {
		close(quit)
		<-done
	}
}

// progress prints a live line every second until stop is closed.
func progress(w io.Writer, name string, rec *recorder, stop <-chan struct{}) {
	if w == nil {
		return
	}
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-stop:
			fmt.Fprintf(w, "\r%-80s\r", "")
			return
		case <-t.C:
			n := rec.count()
			fmt.Fprintf(w, "\r%s: %6.0fs  %8d done  %8d/s", name, time.Since(start).Seconds(), n, n-last)
			last = n
		}
	}
}
