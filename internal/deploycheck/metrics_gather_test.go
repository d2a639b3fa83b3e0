package deploycheck

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// constCollector emits one fixed gauge per scrape, like the processor's DB
// pool collector; silent describes a series but emits nothing.
type constCollector struct {
	desc   *prometheus.Desc
	silent bool
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.silent {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, "open")
	}
}

// Vectors without children are invisible to Gather; gatherFamilies must
// still return them, with their types, whatever their label count.
func TestGatherFamiliesSeesEveryCollectorKind(t *testing.T) {
	register := func(r prometheus.Registerer) error {
		r.MustRegister(
			prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_counter_total", Help: "h"}, []string{"a", "b"}),
			prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t_gauge", Help: "h"}, []string{"a"}),
			prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_seconds", Help: "h"}, []string{"a", "b", "c"}),
			prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "t_summary", Help: "h"}, []string{"a"}),
			prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_plain", Help: "h"}),
			prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t_plain_seconds", Help: "h"}),
			constCollector{desc: prometheus.NewDesc("t_const", "h", []string{"state"}, nil)},
		)
		return nil
	}
	got, err := gatherFamilies(register)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]family{
		"t_counter_total": {dto.MetricType_COUNTER, []string{"a", "b"}},
		"t_gauge":         {dto.MetricType_GAUGE, []string{"a"}},
		"t_seconds":       {dto.MetricType_HISTOGRAM, []string{"a", "b", "c"}},
		"t_summary":       {dto.MetricType_SUMMARY, []string{"a"}},
		"t_plain":         {dto.MetricType_GAUGE, nil},
		"t_plain_seconds": {dto.MetricType_HISTOGRAM, nil},
		"t_const":         {dto.MetricType_GAUGE, []string{"state"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gatherFamilies (-want +got):\n%s", diff)
	}
}

func TestGatherFamiliesReportsWhatItCannotSee(t *testing.T) {
	tests := []struct {
		name     string
		register func(prometheus.Registerer) error
		want     string
	}{
		{
			name: "collector that describes but never collects",
			register: func(r prometheus.Registerer) error {
				return r.Register(constCollector{desc: prometheus.NewDesc("t_silent", "h", []string{"state"}, nil), silent: true})
			},
			want: "t_silent",
		},
		{
			name: "duplicate registration",
			register: func(r prometheus.Registerer) error {
				r.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_dup", Help: "h"}))
				return r.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_dup", Help: "h"}))
			},
			want: "duplicate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gatherFamilies(tt.register)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("gatherFamilies = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDescFQName(t *testing.T) {
	d := prometheus.NewDesc("paystream_x_total", `help with "quotes", fqName: "fake"`, []string{"a"}, prometheus.Labels{"k": "v"})
	names, err := describedNames(constCollector{desc: d})
	if err != nil || len(names) != 1 || names[0] != "paystream_x_total" {
		t.Errorf("describedNames = %q, %v; want [paystream_x_total]", names, err)
	}
}

// Each constructor exports something, all of it in paystream's namespace
// (the Go and process collectors come from obs.NewRegistry, not from them).
func TestExportersUsePaystreamNamespace(t *testing.T) {
	for _, e := range exporters() {
		t.Run(e.name, func(t *testing.T) {
			fams, err := gatherFamilies(e.register)
			if err != nil {
				t.Fatal(err)
			}
			if len(fams) == 0 {
				t.Fatalf("%s registers no metrics", e.name)
			}
			for n := range fams {
				if !isPaystreamName(n) {
					t.Errorf("metric %s does not start with paystream_", n)
				}
			}
		})
	}
}

// The names TEAM.md agreed on are what the dashboard, the alerts and the
// docs were written against; a rename in the code shows up here by name.
func TestAgreedMetricNamesAreExported(t *testing.T) {
	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	agreed := map[string]dto.MetricType{
		"paystream_edge_requests_total":               counter,
		"paystream_edge_rejections_total":             counter,
		"paystream_edge_published_total":              counter,
		"paystream_edge_publish_duration_seconds":     histogram,
		"paystream_edge_request_duration_seconds":     histogram,
		"paystream_edge_in_flight_requests":           gauge,
		"paystream_edge_publish_errors_total":         counter,
		"paystream_processor_events_total":            counter,
		"paystream_processor_handle_duration_seconds": histogram,
		"paystream_processor_end_to_end_seconds":      histogram,
		"paystream_processor_consumer_pending":        gauge,
		"paystream_processor_consumer_ack_pending":    gauge,
		"paystream_processor_consumer_redelivered":    gauge,
		"paystream_processor_dlq_messages":            gauge,
		"paystream_processor_dead_letters_total":      counter,
		"paystream_processor_in_flight":               gauge,
		"paystream_processor_db_connections":          gauge,
		"paystream_processor_db_wait_seconds_total":   counter,
		"paystream_purchases_total":                   counter,
		"paystream_revenue_minor_units_total":         counter,
		"paystream_outbox_backlog":                    gauge,
		"paystream_outbox_published_total":            counter,
		"paystream_outbox_publish_errors_total":       counter,
		"paystream_outbox_oldest_unpublished_seconds": gauge,
		// Go runtime and process collectors of obs.NewRegistry.
		"go_goroutines":                 gauge,
		"process_cpu_seconds_total":     counter,
		"process_resident_memory_bytes": gauge,
	}
	known := knownMetricNames()
	for name, typ := range agreed {
		got, ok := known[name]
		switch {
		case !ok:
			t.Errorf("%s is not exported by any constructor", name)
		case got != typ:
			t.Errorf("%s is a %s, agreed was a %s", name, got, typ)
		}
	}
}
