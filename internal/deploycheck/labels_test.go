package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// targetLabels are the labels Prometheus attaches to every scraped series
// (deploy/prometheus/prometheus.yml has no relabelling that adds more).
var targetLabels = []string{"job", "instance"}

// seriesLabels maps every selectable series name to the label names a
// selector on it may match: the family's own labels, the target labels, and
// le on a histogram's _bucket, quantile on a summary.
func seriesLabels(fams map[string]family) map[string][]string {
	out := map[string][]string{}
	for name, f := range fams {
		base := append(slices.Clone(f.Labels), targetLabels...)
		switch f.Type {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"] = append(slices.Clone(base), "le")
			out[name+"_sum"], out[name+"_count"] = base, base
		case dto.MetricType_SUMMARY:
			out[name] = append(slices.Clone(base), "quantile")
			out[name+"_sum"], out[name+"_count"] = base, base
		default:
			out[name] = base
		}
	}
	for _, n := range prometheusSynthetic {
		out[n] = targetLabels
	}
	return out
}

// checkSelectorLabels returns one problem per label matcher in expr that
// names a label its series does not have: such a selector matches nothing
// (or, negated, everything) and the panel or alert is silently wrong.
// Series not in allowed are left to the metric-name checks.
func checkSelectorLabels(expr string, allowed map[string][]string) ([]string, error) {
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var problems []string
	err = parser.Walk(inspector(func(node parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		have, known := allowed[name]
		if !known {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !slices.Contains(have, m.Name) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (labels: %s)", name, m.Name, strings.Join(have, ", ")))
			}
		}
		return nil
	}), ast, nil)
	return problems, err
}

func TestDashboardAndAlertsMatchExportedLabels(t *testing.T) {
	allowed := seriesLabels(knownFamilies())
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, q := range p.Targets {
			problems, err := checkSelectorLabels(q.Expr, allowed)
			if err != nil {
				continue // reported by TestDashboardUsesOnlyExportedMetrics
			}
			for _, pr := range problems {
				t.Errorf("panel %q query %s: %s", p.Title, q.RefID, pr)
			}
		}
	}
	for _, r := range loadAlerts(t) {
		problems, err := checkSelectorLabels(r.Expr, allowed)
		if err != nil {
			continue // reported by TestAlertRules
		}
		for _, pr := range problems {
			t.Errorf("rule %s%s: %s", r.Alert, r.Record, pr)
		}
	}
}

func TestSelectorLabelCheck(t *testing.T) {
	allowed := seriesLabels(knownFamilies())
	tests := []struct {
		name string
		expr string
		want string // "" = no problem
	}{
		{"labels of the family", `sum by (code) (rate(paystream_edge_requests_total{endpoint="default", code=~"5.."}[5m]))`, ""},
		{"target labels", `up{job="edge", instance!=""}`, ""},
		{"le on a bucket", `paystream_edge_publish_duration_seconds_bucket{le="0.5"}`, ""},
		{"wrong label name", `rate(paystream_edge_requests_total{status="500"}[5m])`, `no label "status"`},
		{"le on a count", `paystream_edge_publish_duration_seconds_count{le="1"}`, `no label "le"`},
		{"label of another family", `paystream_purchases_total{party="gross"}`, `no label "party"`},
		{"unknown series left to the name check", `nope_total{x="y"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, err := checkSelectorLabels(tt.expr, allowed)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("problems = %q, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Errorf("problems = %q, want one mentioning %s", problems, tt.want)
			}
		})
	}
}
