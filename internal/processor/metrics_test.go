package processor

import (
	"database/sql"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads the single sample of a counter, gauge or histogram (its count).
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 8)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		case d.Histogram != nil:
			sum += float64(d.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetricNamesMatchTheAgreedPlan(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if err := RegisterDBStats(reg, func() sql.DBStats {
		return sql.DBStats{OpenConnections: 7, InUse: 3, Idle: 4, WaitCount: 2, WaitDuration: 1500 * time.Millisecond}
	}); err != nil {
		t.Fatal(err)
	}
	// Vectors appear once they have a child.
	m.events.WithLabelValues("charge.refunded", "applied").Inc()
	m.handleDuration.WithLabelValues("charge.refunded").Observe(0.1)
	m.deadLetters.WithLabelValues("max_deliveries").Inc()
	m.ackErrors.WithLabelValues("ack").Inc()
	m.endToEnd.Observe(1)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	values := map[string]float64{}
	for _, f := range fams {
		got = append(got, f.GetName())
		for _, mm := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mm.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if mm.Gauge != nil {
				values[key] = mm.Gauge.GetValue()
			}
			if mm.Counter != nil {
				values[key] = mm.Counter.GetValue()
			}
		}
	}
	want := []string{
		"paystream_processor_ack_errors_total",
		"paystream_processor_acks_resent_total",
		"paystream_processor_batch_size",
		"paystream_processor_consumer_ack_pending",
		"paystream_processor_consumer_pending",
		"paystream_processor_consumer_redelivered",
		"paystream_processor_db_breaker_held_messages",
		"paystream_processor_db_breaker_state",
		"paystream_processor_db_breaker_transitions_total", // every {to} at 0 from the start
		"paystream_processor_db_connections",
		"paystream_processor_db_wait_seconds_total",
		"paystream_processor_db_waits_total",
		"paystream_processor_dead_letters_total",
		"paystream_processor_dlq_messages",
		"paystream_processor_end_to_end_seconds",
		"paystream_processor_events_total",
		"paystream_processor_handle_duration_seconds",
		"paystream_processor_in_flight",
	}
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("metric names = %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("metric names = %v\nwant %v", got, want)
		}
	}
	for k, v := range map[string]float64{
		"paystream_processor_db_connections,state=open":   7,
		"paystream_processor_db_connections,state=in_use": 3,
		"paystream_processor_db_connections,state=idle":   4,
		"paystream_processor_db_wait_seconds_total":       1.5,
		"paystream_processor_db_waits_total":              2,
	} {
		if values[k] != v {
			t.Errorf("%s = %v, want %v", k, values[k], v)
		}
	}
	for _, to := range []string{"open", "half_open", "closed"} {
		k := "paystream_processor_db_breaker_transitions_total,to=" + to
		if v, ok := values[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 before any transition", k, v, ok)
		}
	}
}
