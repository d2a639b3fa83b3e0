package purchase

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/split"
)

// Metrics of the purchase handlers. They are incremented only after the
// transaction committed, so a rolled-back or retried event is never counted.
type Metrics struct {
	purchases *prometheus.CounterVec
	revenue   *prometheus.CounterVec
	refunded  *prometheus.CounterVec
	disputes  *prometheus.CounterVec
	access    *prometheus.CounterVec
	ledger    *ledger.Metrics // the postings the purchase events make
}

// NewMetrics registers the purchase metrics, and the ledger's
// (ledger.NewMetrics), on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_purchases_total",
			Help: "Purchase status changes, by currency and the status the purchase moved to.",
		}, []string{"currency", "status"}),
		revenue: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_revenue_minor_units_total",
			Help: "Revenue of completed purchases in minor units, by currency and party (gross, platform, organization, creator).",
		}, []string{"currency", "party"}),
		refunded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_refunded_minor_units_total",
			Help: "Money refunded on purchases, in minor units, by currency.",
		}, []string{"currency"}),
		disputes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_disputes_total",
			Help: "Dispute changes on purchases, by dispute status (open, won, lost).",
		}, []string{"status"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_content_access_changes_total",
			Help: "Content access granted or revoked by purchase events, by change.",
		}, []string{"change"}),
	}
	reg.MustRegister(m.purchases, m.revenue, m.refunded, m.disputes, m.access)
	m.ledger = ledger.NewMetrics(reg)
	return m
}

// effects are the metric increments of one event's change, made only once
// its transaction committed.
type effects struct {
	m   *Metrics
	rec *eventtx.Record
}

// effects returns the metric increments of rec's event.
func (f *family) effects(rec *eventtx.Record) effects { return effects{m: f.m, rec: rec} }

func (e effects) status(currency, status string) {
	m := e.m
	e.rec.AfterCommit(func() { m.purchases.WithLabelValues(currency, status).Inc() })
}

func (e effects) revenue(currency string, s split.Split) {
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

func (e effects) dispute(status string) {
	m := e.m
	e.rec.AfterCommit(func() { m.disputes.WithLabelValues(status).Inc() })
}

func (e effects) access(change string) {
	m := e.m
	e.rec.AfterCommit(func() { m.access.WithLabelValues(change).Inc() })
}

// Ledger is the ledger's metrics NewMetrics registered: the lifecycle that
// writes the postings of every family of a processor counts in them
// (eventtx.Config.Ledger).
func (m *Metrics) Ledger() *ledger.Metrics { return m.ledger }
