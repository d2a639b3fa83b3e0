package processor

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the processor runtime's Prometheus series (names agreed in
// TEAM.md). Create them once per process with NewMetrics.
type Metrics struct {
	events         *prometheus.CounterVec   // {type,outcome}
	handleDuration *prometheus.HistogramVec // {type}
	endToEnd       prometheus.Histogram
	pending        prometheus.Gauge
	ackPending     prometheus.Gauge
	redelivered    prometheus.Gauge
	dlqMessages    prometheus.Gauge
	deadLetters    *prometheus.CounterVec // {reason}
	inFlight       prometheus.Gauge
	ackErrors      *prometheus.CounterVec // {op}
	acksResent     prometheus.Counter
	batchSize      prometheus.Histogram
	breaker        *breakerMetrics
}

// NewMetrics creates the runtime's series and registers them on reg (skipped
// when reg is nil). Registering twice on one registry is a programming error
// and panics at start-up, like prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_processor_events_total",
			Help: "Stripe events handled, by event type and outcome (applied, duplicate, ignored, retried, dead_lettered).",
		}, []string{"type", "outcome"}),
		handleDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paystream_processor_handle_duration_seconds",
			Help:    "Time the domain handler took for one delivery, by event type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paystream_processor_end_to_end_seconds",
			Help:    "Edge receipt (Paystream-Received-At) to acknowledged commit, retries included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_consumer_pending",
			Help: "Messages on STRIPE_EVENTS not yet delivered to the processor group.",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_consumer_ack_pending",
			Help: "Messages delivered to the processor group and not yet acknowledged.",
		}),
		redelivered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_consumer_redelivered",
			Help: "Messages of the processor consumer currently being redelivered.",
		}),
		dlqMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_dlq_messages",
			Help: "Messages in STRIPE_DLQ waiting for an operator.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_processor_dead_letters_total",
			Help: "Events copied to STRIPE_DLQ by this instance, by reason.",
		}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_processor_in_flight",
			Help: "Events being handled by this instance's workers.",
		}),
		ackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_processor_ack_errors_total",
			Help: "Failed acknowledgements by operation (ack, nak, term, in_progress, dlq_publish); the message is redelivered.",
		}, []string{"op"}),
		acksResent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystream_processor_acks_resent_total",
			Help: "Acks of committed events that failed (the broker was unreachable) and were sent again once it was back, freeing their place in MaxAckPending before AckWait.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paystream_processor_batch_size",
			Help:    "Events a worker handed to the handler together (PROCESSOR_BATCH_SIZE bounds it; 1 when the queue is empty).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		breaker: newBreakerMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.handleDuration, m.endToEnd, m.pending, m.ackPending, m.redelivered,
			m.dlqMessages, m.deadLetters, m.inFlight, m.ackErrors, m.acksResent, m.batchSize)
		reg.MustRegister(m.breaker.collectors()...)
	}
	return m
}

// RegisterDBStats registers the database pool series, read from stats (usually
// (*sql.DB).Stats of the bun.DB) at every scrape:
// paystream_processor_db_connections{state=open|in_use|idle},
// paystream_processor_db_wait_seconds_total and paystream_processor_db_waits_total.
func RegisterDBStats(reg prometheus.Registerer, stats func() sql.DBStats) error {
	return reg.Register(dbStatsCollector{stats: stats})
}

var (
	dbConnsDesc = prometheus.NewDesc("paystream_processor_db_connections",
		"Database pool connections by state.", []string{"state"}, nil)
	dbWaitDesc = prometheus.NewDesc("paystream_processor_db_wait_seconds_total",
		"Total time spent waiting for a free pool connection.", nil, nil)
	dbWaitsDesc = prometheus.NewDesc("paystream_processor_db_waits_total",
		"Number of times a query waited for a free pool connection.", nil, nil)
)

// dbStatsCollector reads the pool statistics at scrape time, so the values
// are exact and no goroutine polls them.
type dbStatsCollector struct{ stats func() sql.DBStats }

func (c dbStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dbConnsDesc
	ch <- dbWaitDesc
	ch <- dbWaitsDesc
}

func (c dbStatsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(dbConnsDesc, prometheus.GaugeValue, float64(s.OpenConnections), "open")
	ch <- prometheus.MustNewConstMetric(dbConnsDesc, prometheus.GaugeValue, float64(s.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(dbConnsDesc, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(dbWaitDesc, prometheus.CounterValue, s.WaitDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(dbWaitsDesc, prometheus.CounterValue, float64(s.WaitCount))
}
