// Package obs builds the observability plumbing every paystream process
// shares: the slog logger tree, a per-process Prometheus registry, the admin
// HTTP server with /metrics, /healthz, /readyz and /debug/pprof/, and the
// OpenTelemetry tracer provider.
package obs

import (
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/term"
)

// Namespace starts every metric name: paystream_…
const Namespace = "paystream"

// NewLogger returns the root logger of a process, writing to w at level and
// tagged once with service. It writes text when w is a terminal (a person
// reads it) and JSON otherwise (a log pipeline reads it).
//
// Parts of the process tag their loggers with log.With("component", name);
// the tree keeps every key once: a nested component becomes a path
// ("processor/purchase") and any other repeated key keeps its newest value.
func NewLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewUniqueHandler(h)).With("service", service)
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
