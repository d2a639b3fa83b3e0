package loadgen

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// Report is what one `paystream bench` run measured: paystream and its
// baseline side by side, and their ratio. Its JSON form is the output of
// `paystream bench … --json`.
type Report struct {
	Kind     string         `json:"kind"`
	Machine  string         `json:"machine"`
	Results  []Result       `json:"results"`
	Ratio    float64        `json:"ratio"` // subject ÷ baseline throughput
	E2E      *Latency       `json:"e2e,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
}

// Machine describes where a run happened (OS, architecture, CPUs, Go), so a
// number is never read without it.
func Machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// benchConfig is a bench's configuration, in the Config pattern.
type benchConfig interface {
	setDefaults()
	validate() error
}

// prepare fills cfg's zero fields with their defaults and checks it, before
// anything connects.
func prepare(cfg benchConfig) error {
	cfg.setDefaults()
	return cfg.validate()
}

// orDiscard is w, or io.Discard for a nil w (quiet).
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
