package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaVariables are the built-in Grafana variables the dashboard may use,
// replaced by a plausible value so the query parses as PromQL. Any other
// `$variable` makes the query fail to parse, on purpose: the dashboard has no
// template variables, so an unknown one is a mistake.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__interval", "1m",
	"$__range", "1h",
)

// metricNames parses a PromQL expression and returns the metric names its
// selectors use (by name or by an equality __name__ matcher), in order of
// appearance. A selector with no fixed name (e.g. {__name__=~"x.*"}) is an
// error: it cannot be checked against the exported names.
func metricNames(expr string) ([]string, error) {
	p := parser.NewParser(parser.Options{})
	ast, err := p.ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var names []string
	err = parser.Walk(inspector(func(node parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type != labels.MatchEqual {
					return fmt.Errorf("selector %s in %q has no fixed metric name", vs, expr)
				}
				name = m.Value
			}
		}
		if name == "" {
			return fmt.Errorf("selector %s in %q has no metric name", vs, expr)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	}), ast, nil)
	return names, err
}

// inspector adapts a function to parser.Visitor.
type inspector func(parser.Node) error

// Visit implements parser.Visitor.
func (f inspector) Visit(node parser.Node, _ []parser.Node) (parser.Visitor, error) {
	if err := f(node); err != nil {
		return nil, err
	}
	return f, nil
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		want    []string
		wantErr bool
	}{
		{
			name: "histogram quantile with grafana interval",
			expr: `histogram_quantile(0.99, sum by (le) (rate(paystream_edge_publish_duration_seconds_bucket[$__rate_interval])))`,
			want: []string{"paystream_edge_publish_duration_seconds_bucket"},
		},
		{
			name: "label names, functions and keywords are not metrics",
			expr: `sum by (code, endpoint) (rate(paystream_edge_requests_total{code=~"5..", endpoint!="rate"}[5m])) / ignoring(code) group_left sum(rate(paystream_edge_requests_total[5m])) > bool 0.05`,
			want: []string{"paystream_edge_requests_total"},
		},
		{
			name: "binary operations, absent and __name__ matcher",
			expr: `absent(up{job="edge"} == 1) or {__name__="paystream_outbox_backlog"} > 0 and max(deriv(paystream_processor_consumer_pending[10m:1m])) > 0`,
			want: []string{"up", "paystream_outbox_backlog", "paystream_processor_consumer_pending"},
		},
		{
			name:    "regex on the metric name cannot be checked",
			expr:    `sum(rate({__name__=~"paystream_.*"}[5m]))`,
			wantErr: true,
		},
		{
			name:    "unknown grafana variable",
			expr:    `rate(paystream_edge_requests_total{endpoint="$endpoint"}[$window])`,
			wantErr: true,
		},
		{
			name:    "syntax error",
			expr:    `sum(rate(paystream_edge_requests_total[5m])`,
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := metricNames(tt.expr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("metricNames(%q) = %v, want an error", tt.expr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("metricNames(%q): %v", tt.expr, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("metricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestExposedSeriesNames(t *testing.T) {
	known := exposedSeriesNames(knownMetricNames())
	for _, n := range []string{
		"paystream_edge_requests_total",
		"paystream_edge_publish_duration_seconds_bucket",
		"paystream_edge_publish_duration_seconds_count",
		"paystream_processor_end_to_end_seconds_sum",
		"up",
	} {
		if !known[n] {
			t.Errorf("%s is not an exposed series name", n)
		}
	}
	// A histogram's family name itself is not a series.
	for _, n := range []string{"paystream_edge_publish_duration_seconds", "paystream_edge_requests"} {
		if known[n] {
			t.Errorf("%s must not be an exposed series name", n)
		}
	}
}
