package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Event results of paystream_reconcile_events_total{result}.
const (
	resultPublished      = "published"
	resultAlreadyPresent = "already_present"
	resultSkipped        = "skipped"
	resultFailed         = "failed"
)

// Metrics are the reconcile series. A nil *Metrics records nothing, so the
// one-shot CLI can run without a registry.
type Metrics struct {
	events      *prometheus.CounterVec
	runs        *prometheus.CounterVec
	backoffs    *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastSeen    prometheus.Gauge
}

// NewMetrics registers the reconcile series on reg:
//   - paystream_reconcile_events_total{result}: published (a missed event
//     recovered), already_present, skipped, failed
//   - paystream_reconcile_runs_total{outcome}: ok, error
//   - paystream_reconcile_backoffs_total{op}: list, publish
//   - paystream_reconcile_last_success_timestamp_seconds: alert when it stops moving
//   - paystream_reconcile_last_run_seen_events: events the last run listed
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_reconcile_events_total",
			Help: "Stripe events listed by reconcile, by result (published = a missed event recovered).",
		}, []string{"result"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_reconcile_runs_total",
			Help: "Reconcile runs by outcome (ok, error).",
		}, []string{"outcome"}),
		backoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_reconcile_backoffs_total",
			Help: "Waits of reconcile's own backoff after a Stripe API or broker failure, by operation.",
		}, []string{"op"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_reconcile_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful reconcile run finished.",
		}),
		lastSeen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_reconcile_last_run_seen_events",
			Help: "Events the last reconcile run listed from Stripe.",
		}),
	}
	reg.MustRegister(m.events, m.runs, m.backoffs, m.lastSuccess, m.lastSeen)
	for _, r := range []string{resultPublished, resultAlreadyPresent, resultSkipped, resultFailed} {
		m.events.WithLabelValues(r)
	}
	for _, o := range []string{"ok", "error"} {
		m.runs.WithLabelValues(o)
	}
	return m
}

func (m *Metrics) event(result string) {
	if m != nil {
		m.events.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) backoff(op string) {
	if m != nil {
		m.backoffs.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) observeRun(s Summary, err error) {
	if m == nil {
		return
	}
	m.lastSeen.Set(float64(s.Seen))
	if err != nil {
		m.runs.WithLabelValues("error").Inc()
		return
	}
	m.runs.WithLabelValues("ok").Inc()
	m.lastSuccess.Set(float64(s.FinishedAt.UnixNano()) / 1e9)
}
