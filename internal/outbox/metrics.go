package outbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the outbox relay.
type Metrics struct {
	backlog   prometheus.Gauge
	oldest    prometheus.Gauge
	published *prometheus.CounterVec
	errors    prometheus.Counter
	pruned    prometheus.Counter
}

// NewMetrics registers the relay's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_outbox_backlog",
			Help: "Outbox rows not yet published to PURCHASES.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_outbox_oldest_unpublished_seconds",
			Help: "Age of the oldest unpublished outbox row; 0 when none.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_outbox_published_total",
			Help: "Outbox rows published to PURCHASES and marked, by subject.",
		}, []string{"subject"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystream_outbox_publish_errors_total",
			Help: "Failed attempts to publish an outbox row.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystream_outbox_pruned_total",
			Help: "Published outbox rows deleted after the retention period.",
		}),
	}
	reg.MustRegister(m.backlog, m.oldest, m.published, m.errors, m.pruned)
	return m
}
