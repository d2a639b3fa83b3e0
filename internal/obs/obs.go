// Package obs builds the observability plumbing every paystream process
// shares: a JSON slog logger, a per-process Prometheus registry, and the
// admin HTTP server with /metrics, /healthz and /readyz.
package obs

import (
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace starts every metric name: paystream_…
const Namespace = "paystream"

// NewLogger returns a JSON logger writing to w at level, tagged with the
// service name.
func NewLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(h).With("service", service)
}

// NewRegistry returns a fresh registry with the Go runtime and process
// collectors. Each process (and each test) owns its own; nothing registers on
// the global default registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
