package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/obs"
)

// unknownEndpoint is the endpoint label of requests that match no configured
// endpoint: the path is attacker-chosen and must not become a label value.
const unknownEndpoint = "unknown"

// Metrics are the edge's Prometheus series (names agreed in TEAM.md).
type Metrics struct {
	Requests        *prometheus.CounterVec   // {endpoint,code}
	Rejections      *prometheus.CounterVec   // {endpoint,reason}
	Published       *prometheus.CounterVec   // {endpoint,type,duplicate}
	PublishDuration *prometheus.HistogramVec // {endpoint}: verified → PubAck (or failure)
	RequestDuration *prometheus.HistogramVec // {endpoint}: whole request
	InFlight        prometheus.Gauge
	PublishErrors   *prometheus.CounterVec // {endpoint}: 503s caused by the broker
}

// latencyBuckets span a local PubAck (sub-millisecond) to the publish timeout.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics creates the edge series and registers them on reg (the
// process's own registry, never the global default). Registering twice on one
// registry is a programming error and panics, as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "requests_total",
			Help: "Webhook requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "rejections_total",
			Help: "Webhook requests refused (4xx/5xx) by endpoint and reason.",
		}, []string{"endpoint", "reason"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "published_total",
			Help: "Verified events acknowledged by JetStream, by endpoint, Stripe event type and whether the broker already had the id.",
		}, []string{"endpoint", "type", "duplicate"}),
		PublishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "publish_duration_seconds",
			Help:    "Time from a verified request to its PubAck (or to the publish failure).",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "request_duration_seconds",
			Help:    "Time to answer a webhook request, including reading the body.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "in_flight_requests",
			Help: "Webhook requests being handled now.",
		}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "edge", Name: "publish_errors_total",
			Help: "Verified events answered 503 because JetStream was unreachable or did not acknowledge in time.",
		}, []string{"endpoint"}),
	}
	reg.MustRegister(m.Requests, m.Rejections, m.Published, m.PublishDuration, m.RequestDuration, m.InFlight, m.PublishErrors)
	return m
}
