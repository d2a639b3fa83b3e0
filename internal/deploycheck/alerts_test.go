package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
)

const (
	alertsPath     = "deploy/prometheus/alerts.yml"
	alertTestsPath = "deploy/prometheus/alerts_test.yml"
	runbookPath    = "docs/runbook.md"
	// runbookLink is how every runbook_url must point into docs/runbook.md.
	runbookLink = "docs/runbook.md#"
)

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(readRepoFile(t, alertsPath), &f); err != nil {
		t.Fatalf("parse %s: %v", alertsPath, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", alertsPath)
	}
	return rules
}

// checkAlert returns the problems of one alerting rule: a missing or zero
// `for:`, an unknown severity, a runbook_url that is not an anchor of
// docs/runbook.md, or a metric no registry exports.
func checkAlert(r rule, known map[string]bool, anchors map[string]bool) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("alert %s: ", r.Alert)+fmt.Sprintf(format, args...))
	}
	if d, err := time.ParseDuration(r.For); r.For == "" || err != nil || d <= 0 {
		bad("needs a positive for: (got %q), so one bad scrape does not page", r.For)
	}
	if s := r.Labels["severity"]; s != "critical" && s != "warning" {
		bad("severity label %q, want critical or warning", s)
	}
	if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
		bad("needs a summary and a description annotation")
	}
	url := r.Annotations["runbook_url"]
	_, anchor, found := strings.Cut(url, runbookLink)
	switch {
	case !found:
		bad("runbook_url %q does not point into %s", url, runbookPath)
	case !anchors[anchor]:
		bad("runbook_url anchor #%s is not a heading of %s", anchor, runbookPath)
	}
	names, err := metricNames(r.Expr)
	if err != nil {
		bad("%v", err)
	}
	if unknown := unknownNames(names, known); len(unknown) > 0 {
		bad("uses metrics no registry exports: %s", strings.Join(unknown, ", "))
	}
	return problems
}

func TestAlertRules(t *testing.T) {
	rules := loadAlerts(t)
	known := exposedSeriesNames(knownMetricNames())
	anchors, err := markdownAnchors(string(readRepoFile(t, runbookPath)))
	if err != nil {
		t.Fatalf("%s: %v", runbookPath, err)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			continue // recording rule
		}
		if seen[r.Alert] {
			t.Errorf("alert %s is defined twice", r.Alert)
		}
		seen[r.Alert] = true
		for _, p := range checkAlert(r, known, anchors) {
			t.Error(p)
		}
	}
	// The alerts the operations issue asks for.
	for _, want := range []string{
		"PaystreamDLQNotEmpty",
		"PaystreamConsumerLagGrowing",
		"PaystreamEdgeErrorRatio",
		"PaystreamSignatureFailures",
		"PaystreamOutboxStuck",
		"PaystreamProcessorDown",
		"PaystreamEdgeDown",
	} {
		if !seen[want] {
			t.Errorf("alert %s is missing from %s", want, alertsPath)
		}
	}
}

func TestAlertCheckCatchesMistakes(t *testing.T) {
	known := exposedSeriesNames(knownMetricNames())
	anchors := map[string]bool{"paystreamdlqnotempty": true}
	good := rule{
		Alert:  "PaystreamDLQNotEmpty",
		Expr:   "max(paystream_processor_dlq_messages) > 0",
		For:    "5m",
		Labels: map[string]string{"severity": "warning"},
		Annotations: map[string]string{
			"summary": "s", "description": "d",
			"runbook_url": "https://example.invalid/docs/runbook.md#paystreamdlqnotempty",
		},
	}
	if p := checkAlert(good, known, anchors); len(p) != 0 {
		t.Fatalf("a good rule has problems: %q", p)
	}
	tests := []struct {
		name   string
		mutate func(*rule)
		want   string
	}{
		{"no for", func(r *rule) { r.For = "" }, "for:"},
		{"zero for", func(r *rule) { r.For = "0s" }, "for:"},
		{"no runbook", func(r *rule) { delete(r.Annotations, "runbook_url") }, "does not point"},
		{"missing anchor", func(r *rule) { r.Annotations["runbook_url"] = "docs/runbook.md#nope" }, "#nope"},
		{"unknown metric", func(r *rule) { r.Expr = "paystream_dlq_depth > 0" }, "paystream_dlq_depth"},
		{"no severity", func(r *rule) { delete(r.Labels, "severity") }, "severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			r.Labels = map[string]string{"severity": "warning"}
			r.Annotations = map[string]string{}
			for k, v := range good.Annotations {
				r.Annotations[k] = v
			}
			tt.mutate(&r)
			p := checkAlert(r, known, anchors)
			if len(p) != 1 || !strings.Contains(p[0], tt.want) {
				t.Errorf("problems = %q, want one mentioning %q", p, tt.want)
			}
		})
	}
}

// promtool runs alerts_test.yml; this checks that it tests every alert both
// firing (a non-empty exp_alerts) and not firing (an empty one).
func TestEveryAlertIsUnitTested(t *testing.T) {
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name         string `yaml:"name"`
			AlertRuleTst []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, alertTestsPath), &f); err != nil {
		t.Fatalf("parse %s: %v", alertTestsPath, err)
	}
	if !slices.Contains(f.RuleFiles, "alerts.yml") {
		t.Errorf("%s does not load alerts.yml (rule_files: %v)", alertTestsPath, f.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTst {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range loadAlerts(t) {
		if r.Alert == "" {
			continue
		}
		if !fires[r.Alert] {
			t.Errorf("%s never tests alert %s firing", alertTestsPath, r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s never tests alert %s staying quiet", alertTestsPath, r.Alert)
		}
	}
}
