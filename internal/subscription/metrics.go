package subscription

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/split"
)

// Metrics of subscriptions. The counters move only after the event's
// transaction committed (eventtx.Record.AfterCommit), so a rolled-back or
// retried event is never counted; the gauges are refreshed from the
// database by the sweeper (gauges.go). Every label has a small fixed set of
// values: currencies of plans, two intervals, statuses and reasons paystream
// names itself.
type Metrics struct {
	events    *prometheus.CounterVec
	churn     *prometheus.CounterVec
	renewals  *prometheus.CounterVec
	revenue   *prometheus.CounterVec
	refunded  *prometheus.CounterVec
	refetches *prometheus.CounterVec
	active    *prometheus.GaugeVec
	mrr       *prometheus.GaugeVec
	backlog   prometheus.Gauge
}

// NewMetrics registers the subscription metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_events_total",
			Help: "Subscription domain events written to the outbox, by kind (started, renewed, past_due, canceled, expired).",
		}, []string{"kind"}),
		churn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_churn_total",
			Help: "Subscriptions canceled (kind=canceled, reason: Stripe's cancellation reason) and access ended (kind=expired, reason: why).",
		}, []string{"kind", "reason"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_renewals_total",
			Help: "Renewal charges of subscriptions (billing_reason subscription_cycle), by currency and outcome (paid, failed: one per failed attempt).",
		}, []string{"currency", "outcome"}),
		revenue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_revenue_minor_units_total",
			Help: "Revenue of paid subscription invoices in minor units, by currency and party (gross, platform, organization, creator).",
		}, []string{"currency", "party"}),
		refunded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_refunded_minor_units_total",
			Help: "Money refunded on subscription invoices, in minor units, by currency.",
		}, []string{"currency"}),
		refetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_subscription_refetches_total",
			Help: "Subscriptions fetched from Stripe to settle a tie or an undecidable event, by result (ok, not_found, failed).",
		}, []string{"result"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paystream_subscriptions_active",
			Help: "Subscriptions granting access now, by plan currency, plan interval and status (trialing, active, past_due).",
		}, []string{"currency", "interval", "status"}),
		mrr: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paystream_subscription_mrr_minor_units",
			Help: "Monthly recurring revenue in minor units by currency: the monthly list price of every active or past_due subscription granting access.",
		}, []string{"currency"}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_subscription_expiry_backlog_seconds",
			Help: "Age of the oldest ended access not yet announced (subscriptions.expired); 0 when none waits.",
		}),
	}
	reg.MustRegister(m.events, m.churn, m.renewals, m.revenue, m.refunded, m.refetches, m.active, m.mrr, m.backlog)
	return m
}

// Results of a refetch.
const (
	refetchOK       = "ok"
	refetchNotFound = "not_found"
	refetchFailed   = "failed"
)

// refetched counts one refetch at once: it is about Stripe, not about what
// the transaction commits.
func (m *Metrics) refetched(result string) {
	if m != nil {
		m.refetches.WithLabelValues(result).Inc()
	}
}

// Cancellation reasons of the churn metric: Stripe's, or unknown.
var cancelReasons = map[string]bool{"cancellation_requested": true, "payment_failed": true, "payment_disputed": true} // read-only

// effects are one event's metric increments, made once its transaction
// committed.
type effects struct {
	m   *Metrics
	rec *eventtx.Record
}

func (e effects) event(kind string) {
	m := e.m
	e.rec.AfterCommit(func() { m.events.WithLabelValues(kind).Inc() })
}

func (e effects) canceled(stripeReason string) {
	reason := stripeReason
	if !cancelReasons[reason] {
		reason = "unknown"
	}
	m := e.m
	e.rec.AfterCommit(func() { m.churn.WithLabelValues(EventCanceled, reason).Inc() })
}

func (e effects) expired(reason string) {
	m := e.m
	e.rec.AfterCommit(func() { m.churn.WithLabelValues(EventExpired, reason).Inc() })
}

func (e effects) renewal(currency, outcome string) {
	m := e.m
	e.rec.AfterCommit(func() { m.renewals.WithLabelValues(currency, outcome).Inc() })
}

func (e effects) revenueOf(currency string, s split.Split) {
	m := e.m
	e.rec.AfterCommit(func() {
		m.revenue.WithLabelValues(currency, "gross").Add(float64(s.Amount))
		m.revenue.WithLabelValues(currency, "platform").Add(float64(s.Platform))
		m.revenue.WithLabelValues(currency, "organization").Add(float64(s.Organization))
		m.revenue.WithLabelValues(currency, "creator").Add(float64(s.Creator))
	})
}

func (e effects) refund(currency string, delta int64) {
	m := e.m
	e.rec.AfterCommit(func() { m.refunded.WithLabelValues(currency).Add(float64(delta)) })
}
