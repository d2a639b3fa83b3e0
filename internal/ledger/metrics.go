package ledger

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what was posted. Every label is bounded: the cause (one of
// the Cause constants) and the currency, never an account or a payee.
type Metrics struct {
	postings *prometheus.CounterVec
	amounts  *prometheus.CounterVec
}

// NewMetrics registers the ledger's metrics on reg, or takes the ones
// already registered there: every part of a process that posts (the
// processor's event families, a payout run) may build its own Metrics on
// the process's registry, and they count into the same series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		postings: registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_ledger_postings_total",
			Help: "Ledger transactions posted (committed), by cause.",
		}, []string{"cause"})),
		amounts: registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_ledger_posted_minor_units_total",
			Help: "Money moved by posted ledger transactions (the sum of their positive entries), in minor units, by cause and currency.",
		}, []string{"cause", "currency"})),
	}
}

func registerOrReuse(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return prev
			}
		}
		panic(err) // a name clash with another kind of metric: a bug, as MustRegister would say
	}
	return c
}

// Observe counts the transactions of ts that PostMany reported Posted
// (out[i] is ts[i]'s outcome). Call it once the database transaction
// committed, so a rolled-back posting is never counted.
func (m *Metrics) Observe(ts []Transaction, out []Outcome) {
	for i, t := range ts {
		if i >= len(out) || out[i] != Posted {
			continue
		}
		m.postings.WithLabelValues(string(t.Cause)).Inc()
		moved := map[string]int64{}
		for _, e := range t.Entries {
			if e.Amount > 0 {
				moved[e.Account.Currency] += e.Amount
			}
		}
		for cur, v := range moved {
			m.amounts.WithLabelValues(string(t.Cause), cur).Add(float64(v))
		}
	}
}
