package deploycheck

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// intentionallyUnwatched are paystream_ families that no panel or alert
// reads, each with the reason. internal/livecheck keeps the same list for
// what the running services export.
var intentionallyUnwatched = map[string]string{}

// Every paystream_ family a constructor registers is read by a panel or an
// alert: a metric nobody looks at is either missing from the dashboard or
// dead code. This sees the families that export nothing until their first
// event (e.g. a vector without children), which the live check cannot.
func TestEveryPaystreamMetricIsWatched(t *testing.T) {
	used := map[string]bool{}
	add := func(expr string) {
		names, err := metricNames(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, q := range p.Targets {
			add(q.Expr)
		}
	}
	for _, r := range loadAlerts(t) {
		add(r.Expr)
	}
	var unwatched []string
	for name, typ := range knownMetricNames() {
		if !strings.HasPrefix(name, "paystream_") {
			continue
		}
		series := []string{name}
		if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
			series = append(series, name+"_bucket", name+"_sum", name+"_count")
		}
		if !slices.ContainsFunc(series, func(s string) bool { return used[s] }) {
			if _, ok := intentionallyUnwatched[name]; !ok {
				unwatched = append(unwatched, name)
			}
		}
	}
	slices.Sort(unwatched)
	for _, n := range unwatched {
		t.Errorf("%s is registered but no panel or alert uses it (add a panel, or list it in intentionallyUnwatched with the reason)", n)
	}
}
