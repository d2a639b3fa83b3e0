package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/obs"
)

// Metrics are the API's Prometheus series, paystream_api_….
type Metrics struct {
	Requests        *prometheus.CounterVec   // {route,code}
	RequestDuration *prometheus.HistogramVec // {route}
	InFlight        prometheus.Gauge
	StripeDuration  *prometheus.HistogramVec // {operation}
	StripeErrors    *prometheus.CounterVec   // {operation,reason}
	Checkouts       *prometheus.CounterVec   // {result}: created, reused, replayed
	// SubscriptionCheckouts {result}: created, reused, replayed.
	SubscriptionCheckouts *prometheus.CounterVec
	// AccessBatchSize: access checks answered by one statement.
	AccessBatchSize prometheus.Histogram
}

// apiBuckets span an indexed lookup (sub-millisecond) to a slow Stripe call.
var apiBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// unmatchedRoute labels requests no route matched: the path is caller-chosen
// and must not become a label value.
const unmatchedRoute = "unmatched"

// NewMetrics creates the API series and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "requests_total",
			Help: "Purchase API requests by route pattern and HTTP status code.",
		}, []string{"route", "code"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time to answer a purchase API request, by route pattern.",
			Buckets: apiBuckets,
		}, []string{"route"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "in_flight_requests",
			Help: "Purchase API requests being handled now.",
		}),
		StripeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "stripe_request_duration_seconds",
			Help:    "Time of one Stripe API operation including stripe-go's retries, by operation.",
			Buckets: apiBuckets,
		}, []string{"operation"}),
		StripeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "stripe_errors_total",
			Help: "Stripe API operations that failed, by operation and reason (unreachable, server_error, rate_limited, rejected).",
		}, []string{"operation", "reason"}),
		Checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "checkouts_total",
			Help: "Checkout requests answered with a session, by result: created, reused (an open session of the customer), replayed (same Idempotency-Key).",
		}, []string{"result"}),
		SubscriptionCheckouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "subscription_checkouts_total",
			Help: "Subscription checkout requests answered with a session, by result: created, reused (an open session of the customer for the plan), replayed (same Idempotency-Key).",
		}, []string{"result"}),
		AccessBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: "api", Name: "access_batch_size",
			Help:    "Access checks answered by one statement: 1 under light load, more when checks queue behind the workers (API_ACCESS_WORKERS, API_ACCESS_BATCH).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
	}
	reg.MustRegister(m.Requests, m.RequestDuration, m.InFlight, m.StripeDuration, m.StripeErrors, m.Checkouts,
		m.SubscriptionCheckouts, m.AccessBatchSize)
	return m
}
