package payout

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a transfer attempt, the result label of
// paystream_payouts_attempts_total.
const (
	attemptCreated    = "created"     // Stripe answered with the transfer (new, or replayed for the key)
	attemptAdopted    = "adopted"     // found by listing the transfer group
	attemptUnanswered = "unanswered"  // no answer, or one before execution: the same key next time
	attemptSpent      = "key_spent"   // refused after execution began: a new key after the backoff
	attemptRefused    = "refused"     // the account cannot receive: the payout failed
	attemptListFailed = "list_failed" // the transfer group could not be listed: nothing sent
)

// Outcomes of the store functions of the Connect webhooks, the outcome
// label of paystream_payouts_payee_updates_total.
const (
	payeeApplied        = "applied"
	payeeStale          = "stale"
	payeeUnknownAccount = "unknown_account"
	payeeConflict       = "conflict"
	payeeReversal       = "reversal"
	payeeReversalNoop   = "reversal_already_posted"
)

// reconcile difference kinds, the kind label of
// paystream_payouts_reconcile_differences.
const (
	diffMissing  = "missing"  // a paid payout whose transfer Stripe does not list
	diffExtra    = "extra"    // a transfer of a payout's group that no paid payout records
	diffAmount   = "amount"   // a transfer whose amount, currency or destination is not its payout's
	diffReversed = "reversed" // a transfer reversed by more or less than the payout records
)

// Metrics are the payout series. A nil *Metrics records nothing, so the
// CLI runs without a registry.
type Metrics struct {
	payouts      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	payeeUpdates *prometheus.CounterVec
	runs         *prometheus.CounterVec
	runDuration  prometheus.Histogram
	lastSuccess  prometheus.Gauge
	open         prometheus.Gauge
	oldestOpen   prometheus.Gauge
	negative     prometheus.Gauge
	negativeAge  prometheus.Gauge
	differences  *prometheus.GaugeVec
	releases     prometheus.Counter
	verifyRuns   *prometheus.CounterVec
	verifyDiff   prometheus.Gauge
	verifyLast   prometheus.Gauge
}

// NewMetrics registers the payout and ledger series on reg. No label holds
// a payee id; every label's values are the fixed sets below, each created
// at zero so panels and alerts see the series before the first payout:
//   - paystream_payouts_total{status}: payouts reaching created, paid, failed, canceled
//   - paystream_payouts_failed_total{reason}: account_invalid, transfers_not_allowed, deauthorized
//   - paystream_payouts_attempts_total{result}: created, adopted, unanswered, key_spent, refused, list_failed
//   - paystream_payouts_payee_updates_total{outcome}: the Connect webhooks' store functions
//   - paystream_payouts_runs_total{outcome}, _run_duration_seconds, _last_success_timestamp_seconds
//   - paystream_payouts_open, _oldest_open_age_seconds: payouts not settled yet
//   - paystream_payouts_negative_balances, _negative_balance_max_age_seconds
//   - paystream_payouts_reconcile_differences{kind}: missing, extra, amount, reversed
//   - paystream_ledger_releases_total, paystream_ledger_verify_runs_total{outcome},
//     paystream_ledger_verify_difference, paystream_ledger_verify_last_run_timestamp_seconds
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		payouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_payouts_total",
			Help: "Payouts that reached a status: created, paid, failed, canceled.",
		}, []string{"status"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_payouts_failed_total",
			Help: "Payouts failed because the payee's account cannot receive transfers, by reason.",
		}, []string{"reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_payouts_attempts_total",
			Help: "Transfer attempts by result (created, adopted, unanswered, key_spent, refused, list_failed).",
		}, []string{"result"}),
		payeeUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_payouts_payee_updates_total",
			Help: "Connect webhook changes (account.updated, deauthorization, transfer.reversed) by outcome.",
		}, []string{"outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_payouts_runs_total",
			Help: "Payout runs by outcome (ok, error).",
		}, []string{"outcome"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paystream_payouts_run_duration_seconds",
			Help:    "Duration of a payout run (advancing open payouts and paying out due balances).",
			Buckets: prometheus.ExponentialBuckets(0.05, 3, 10),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_payouts_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful payout run finished.",
		}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_payouts_open",
			Help: "Payouts pending or in transit after the last run.",
		}),
		oldestOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_payouts_oldest_open_age_seconds",
			Help: "Age of the oldest payout still pending or in transit after the last run.",
		}),
		negative: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_payouts_negative_balances",
			Help: "Payee available balances below zero (a refund after the transfer), after the last run.",
		}),
		negativeAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_payouts_negative_balance_max_age_seconds",
			Help: "How long the oldest negative payee available balance has been below zero.",
		}),
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paystream_payouts_reconcile_differences",
			Help: "Differences the last payouts reconcile found between Stripe's transfers and the payouts, by kind.",
		}, []string{"kind"}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystream_ledger_releases_total",
			Help: "Sales whose hold ended: pending moved to available.",
		}),
		verifyRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystream_ledger_verify_runs_total",
			Help: "Periodic ledger verifications by outcome (ok, difference, error).",
		}, []string{"outcome"}),
		verifyDiff: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_ledger_verify_difference",
			Help: "1 when the last completed ledger verification found a difference, else 0.",
		}),
		verifyLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystream_ledger_verify_last_run_timestamp_seconds",
			Help: "Unix time of the last completed ledger verification.",
		}),
	}
	reg.MustRegister(m.payouts, m.failed, m.attempts, m.payeeUpdates, m.runs, m.runDuration, m.lastSuccess,
		m.open, m.oldestOpen, m.negative, m.negativeAge, m.differences, m.releases, m.verifyRuns, m.verifyDiff, m.verifyLast)
	touch := func(v *prometheus.CounterVec, values ...string) {
		for _, x := range values {
			v.WithLabelValues(x)
		}
	}
	touch(m.payouts, EventCreated, EventPaid, EventFailed, EventCanceled)
	touch(m.failed, CodeAccountInvalid, CodeTransfersNotAllowed, CodeDeauthorized)
	touch(m.attempts, attemptCreated, attemptAdopted, attemptUnanswered, attemptSpent, attemptRefused, attemptListFailed)
	touch(m.payeeUpdates, payeeApplied, payeeStale, payeeUnknownAccount, payeeConflict, payeeReversal, payeeReversalNoop)
	touch(m.runs, "ok", "error")
	touch(m.verifyRuns, "ok", "difference", "error")
	for _, k := range []string{diffMissing, diffExtra, diffAmount, diffReversed} {
		m.differences.WithLabelValues(k)
	}
	return m
}

func (m *Metrics) payout(status string) {
	if m != nil {
		m.payouts.WithLabelValues(status).Inc()
	}
}

func (m *Metrics) failure(reason string) {
	if m == nil {
		return
	}
	if reason != CodeAccountInvalid && reason != CodeTransfersNotAllowed && reason != CodeDeauthorized {
		reason = CodeAccountInvalid // refusalCodes bound it; never a new label value
	}
	m.failed.WithLabelValues(reason).Inc()
}

func (m *Metrics) attempt(result string) {
	if m != nil {
		m.attempts.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) payeeUpdate(outcome string) {
	if m != nil {
		m.payeeUpdates.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) observeRun(took time.Duration, finished time.Time, err error) {
	if m == nil {
		return
	}
	m.runDuration.Observe(took.Seconds())
	if err != nil {
		m.runs.WithLabelValues("error").Inc()
		return
	}
	m.runs.WithLabelValues("ok").Inc()
	m.lastSuccess.Set(float64(finished.UnixNano()) / 1e9)
}

func (m *Metrics) observeReleases(n int) {
	if m != nil {
		m.releases.Add(float64(n))
	}
}

func (m *Metrics) observeHealth(h Health) {
	if m == nil {
		return
	}
	m.open.Set(float64(h.Open))
	m.oldestOpen.Set(h.OldestOpenAge.Seconds())
	m.negative.Set(float64(h.NegativeBalances))
	m.negativeAge.Set(h.OldestNegativeAge.Seconds())
}

func (m *Metrics) observeReconcile(r ReconcileReport) {
	if m == nil {
		return
	}
	m.differences.WithLabelValues(diffMissing).Set(float64(len(r.Missing)))
	m.differences.WithLabelValues(diffExtra).Set(float64(len(r.Extra)))
	m.differences.WithLabelValues(diffAmount).Set(float64(len(r.Amount)))
	m.differences.WithLabelValues(diffReversed).Set(float64(len(r.Reversed)))
}

// observeVerify records a verification: diff is whether it found a
// difference; err a failure to read, which leaves the gauge as it was.
func (m *Metrics) observeVerify(diff bool, err error, at time.Time) {
	if m == nil {
		return
	}
	switch {
	case err != nil:
		m.verifyRuns.WithLabelValues("error").Inc()
		return
	case diff:
		m.verifyRuns.WithLabelValues("difference").Inc()
		m.verifyDiff.Set(1)
	default:
		m.verifyRuns.WithLabelValues("ok").Inc()
		m.verifyDiff.Set(0)
	}
	m.verifyLast.Set(float64(at.UnixNano()) / 1e9)
}
