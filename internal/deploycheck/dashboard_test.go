package deploycheck

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// dashboardPath is the dashboard Grafana provisions (compose.yaml mounts the
// directory).
const dashboardPath = "deploy/grafana/dashboards/paystream.json"

// dashboard is the part of a Grafana dashboard JSON the checks read.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

// panel is a Grafana panel; rows nest their panels when collapsed.
type panel struct {
	ID         int          `json:"id"`
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Datasource *datasource  `json:"datasource"`
	Targets    []panelQuery `json:"targets"`
	Panels     []panel      `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelQuery struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

// allPanels flattens rows into their panels.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// checkDashboardMetrics returns one problem per query that does not parse or
// uses a series name outside known.
func checkDashboardMetrics(d dashboard, known map[string]bool) []string {
	var problems []string
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			names, err := metricNames(q.Expr)
			if err != nil {
				problems = append(problems, fmt.Sprintf("panel %q query %s: %v", p.Title, q.RefID, err))
				continue
			}
			if unknown := unknownNames(names, known); len(unknown) > 0 {
				problems = append(problems, fmt.Sprintf("panel %q query %s uses metrics no registry exports: %s",
					p.Title, q.RefID, strings.Join(unknown, ", ")))
			}
		}
	}
	return problems
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardPath, err)
	}
	return d
}

func TestDashboardUsesOnlyExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	known := exposedSeriesNames(knownMetricNames())
	for _, p := range checkDashboardMetrics(d, known) {
		t.Error(p)
	}
}

// The check above must be able to fail: a panel with a misspelt or
// not-yet-exported name is reported, and so is a query that does not parse.
func TestDashboardCheckCatchesUnknownNames(t *testing.T) {
	known := exposedSeriesNames(knownMetricNames())
	tests := []struct {
		name string
		expr string
		want string
	}{
		{"misspelt counter", `sum(rate(paystream_edge_request_total[5m]))`, "paystream_edge_request_total"},
		{"histogram family without _bucket", `histogram_quantile(0.5, rate(paystream_edge_publish_duration_seconds[5m]))`, "paystream_edge_publish_duration_seconds"},
		{"name from another system", `nats_jetstream_stream_messages`, "nats_jetstream_stream_messages"},
		{"unparseable", `sum(rate(paystream_edge_requests_total[5m])`, "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dashboard{Panels: []panel{{Type: "row", Title: "r", Panels: []panel{{
				Type: "timeseries", Title: "bad", Targets: []panelQuery{{RefID: "A", Expr: tt.expr}},
			}}}}}
			problems := checkDashboardMetrics(d, known)
			if len(problems) != 1 || !strings.Contains(problems[0], tt.want) {
				t.Errorf("problems = %q, want one mentioning %q", problems, tt.want)
			}
		})
	}
}

// The issue lists the panels the dashboard must have; each is found by the
// metric its queries use.
func TestDashboardCoversRequiredPanels(t *testing.T) {
	d := loadDashboard(t)
	used := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			names, err := metricNames(q.Expr)
			if err != nil {
				continue // reported by TestDashboardUsesOnlyExportedMetrics
			}
			for _, n := range names {
				used[n] = true
			}
		}
	}
	required := map[string]string{
		"webhook rate by status":     "paystream_edge_requests_total",
		"rejections by reason":       "paystream_edge_rejections_total",
		"publish latency":            "paystream_edge_publish_duration_seconds_bucket",
		"processing rate by outcome": "paystream_processor_events_total",
		"end-to-end latency":         "paystream_processor_end_to_end_seconds_bucket",
		"consumer lag":               "paystream_processor_consumer_pending",
		"ack-pending":                "paystream_processor_consumer_ack_pending",
		"DLQ depth":                  "paystream_processor_dlq_messages",
		"outbox backlog":             "paystream_outbox_backlog",
		"purchases by currency":      "paystream_purchases_total",
		"revenue by currency":        "paystream_revenue_minor_units_total",
		"DB pool":                    "paystream_processor_db_connections",
		"API requests by route":      "paystream_api_requests_total",
		"API latency":                "paystream_api_request_duration_seconds_bucket",
		"Stripe call errors":         "paystream_api_stripe_errors_total",
	}
	for panelName, metric := range required {
		if !used[metric] {
			t.Errorf("no panel for %s: no query uses %s", panelName, metric)
		}
	}
}

// Every query must go to the provisioned datasource, by its fixed uid; a
// dashboard exported from another Grafana carries a foreign uid and would
// show "datasource not found".
func TestDashboardDatasourceIsProvisioned(t *testing.T) {
	var prov struct {
		Datasources []struct {
			Name string `yaml:"name"`
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	const provPath = "deploy/grafana/provisioning/datasources/prometheus.yml"
	if err := yaml.Unmarshal(readRepoFile(t, provPath), &prov); err != nil {
		t.Fatalf("parse %s: %v", provPath, err)
	}
	uids := map[string]string{}
	for _, ds := range prov.Datasources {
		uids[ds.UID] = ds.Type
	}
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a fixed uid and a title, got uid %q title %q", d.UID, d.Title)
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		dss := []*datasource{p.Datasource}
		for _, q := range p.Targets {
			dss = append(dss, q.Datasource)
		}
		for _, ds := range dss {
			if ds == nil {
				t.Errorf("panel %q: a query has no datasource", p.Title)
				continue
			}
			if typ, ok := uids[ds.UID]; !ok || typ != ds.Type {
				t.Errorf("panel %q uses datasource %+v, provisioned are %v", p.Title, *ds, uids)
			}
		}
	}
}

// The dashboard provider must read the directory compose.yaml mounts the
// dashboards into.
func TestDashboardProviderPath(t *testing.T) {
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	const provPath = "deploy/grafana/provisioning/dashboards/paystream.yml"
	if err := yaml.Unmarshal(readRepoFile(t, provPath), &prov); err != nil {
		t.Fatalf("parse %s: %v", provPath, err)
	}
	p := loadProject(t, "compose.yaml")
	g, err := p.GetService("grafana")
	if err != nil {
		t.Fatal(err)
	}
	var mounted []string
	for _, v := range g.Volumes {
		if strings.HasSuffix(v.Source, "/deploy/grafana/dashboards") {
			mounted = append(mounted, v.Target)
		}
	}
	if len(prov.Providers) == 0 {
		t.Fatalf("%s has no provider", provPath)
	}
	for _, pr := range prov.Providers {
		if !slices.Contains(mounted, pr.Options.Path) {
			t.Errorf("dashboard provider reads %q, compose mounts deploy/grafana/dashboards at %v", pr.Options.Path, mounted)
		}
	}
}
