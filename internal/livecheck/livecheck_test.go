package livecheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
)

const (
	dashboardPath = "deploy/grafana/dashboards/paystream.json"
	alertsPath    = "deploy/prometheus/alerts.yml"
	price         = 2999
	dlqAlert      = "PaystreamDLQNotEmpty"
)

// grafanaVariables stand in for Grafana's built-in variables. The dashboard
// has no template variables of its own; any other `$x` fails to parse.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__interval", "15s",
	"$__range", "10m",
)

// legitimatelyEmpty are the panel queries (panel title / refId) that return
// nothing in this scenario, and why. Any other empty query fails the test.
var legitimatelyEmpty = map[string]string{
	"Broker errors and in-flight requests/A": "paystream_edge_publish_errors_total has children only after a broker error; the broker is up throughout",
	"Ack errors by operation/A":              "paystream_processor_ack_errors_total has children only after the broker failed to confirm an ack; it never does here",
	"Reconcile runs and events/C":            "paystream_reconcile_backoffs_total has children only after a Stripe API or broker failure; the first reconcile run is a minute away",
}

// intentionallyUnused are paystream_ metrics no panel or alert reads, and why.
// internal/deploycheck's intentionallyUnwatched is the same list for every
// registered family, including those not exported in this scenario.
var intentionallyUnused = map[string]string{}

// Every panel query returns data and every alert expression evaluates
// against what the running services export; the DLQ alert fires after a
// poison event; no exported paystream_ metric is left unwatched.
func TestDashboardAndAlertsLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack and a Prometheus server")
	}
	prometheusBinary(t)       // skip early, before starting the stack
	installInMemoryTracing(t) // so the latency histograms carry exemplars
	s := startStack(t)
	prom := startPrometheus(t, s.adminTargets(), rulesWithShortFor(t, t.TempDir(), dlqAlert))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	driveTraffic(t, s)

	t.Run("every panel returns data", func(t *testing.T) {
		queries := panelQueries(t)
		if len(queries) < 10 {
			t.Fatalf("only %d panel queries found in %s", len(queries), dashboardPath)
		}
		empty := eventually(ctx, 90*time.Second, func() []string {
			var empty []string
			for _, q := range queries {
				if _, ok := legitimatelyEmpty[q.key]; ok {
					continue
				}
				res, err := prom.query(ctx, q.expr)
				if err != nil {
					t.Errorf("panel %s: %v", q.key, err)
					continue
				}
				if len(res) == 0 {
					empty = append(empty, q.key+": "+q.expr)
				}
			}
			return empty
		})
		for _, e := range empty {
			t.Errorf("panel query returns no data: %s", e)
		}
		for _, q := range queries {
			if why, ok := legitimatelyEmpty[q.key]; ok {
				res, err := prom.query(ctx, q.expr)
				t.Logf("listed as empty: %s (%d samples, err %v): %s", q.key, len(res), err, why)
			}
		}
		for key := range legitimatelyEmpty {
			if !slices.ContainsFunc(queries, func(q panelQuery) bool { return q.key == key }) {
				t.Errorf("legitimatelyEmpty lists %q, which the dashboard no longer has", key)
			}
		}
	})

	t.Run("every alert expression evaluates; the DLQ alert fires", func(t *testing.T) {
		var firing bool
		var rules []ruleState
		eventually(ctx, 90*time.Second, func() []string {
			var err error
			if rules, err = prom.rules(ctx); err != nil {
				t.Fatal(err)
			}
			firing = slices.ContainsFunc(rules, func(r ruleState) bool { return r.Name == dlqAlert && r.State == "firing" })
			if !firing {
				return []string{dlqAlert + " not firing yet"}
			}
			return nil
		})
		if len(rules) < 5 {
			t.Fatalf("Prometheus loaded %d rules from %s", len(rules), alertsPath)
		}
		for _, r := range rules {
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q, last error %q", r.Name, r.Health, r.LastError)
			}
			if _, err := prom.query(ctx, r.Query); err != nil {
				t.Errorf("rule %s: %v", r.Name, err)
			}
		}
		if !firing {
			t.Errorf("%s is not firing after a poison event; rules: %+v", dlqAlert, rules)
		}
	})

	t.Run("every exported paystream metric is watched", func(t *testing.T) {
		used := map[string]bool{}
		for _, q := range panelQueries(t) {
			for _, n := range selectorNames(t, q.expr) {
				used[family(n)] = true
			}
		}
		rules, err := prom.rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			for _, n := range selectorNames(t, r.Query) {
				used[family(n)] = true
			}
		}
		names, err := prom.metricNames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var unused []string
		for _, n := range names {
			if !strings.HasPrefix(n, "paystream_") || used[family(n)] {
				continue
			}
			if _, ok := intentionallyUnused[family(n)]; ok {
				continue
			}
			unused = append(unused, n)
		}
		sort.Strings(unused)
		for _, n := range slices.Compact(unused) {
			t.Errorf("%s is exported but no panel or alert uses it (add a panel, or list it in intentionallyUnused with the reason)", n)
		}
	})

	t.Run("latency histograms carry trace exemplars", func(t *testing.T) {
		missing := eventually(ctx, 30*time.Second, func() []string {
			var missing []string
			for _, h := range []string{"paystream_edge_request_duration_seconds_bucket", "paystream_edge_publish_duration_seconds_bucket",
				"paystream_processor_handle_duration_seconds_bucket"} {
				n, err := prom.exemplars(ctx, h)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					missing = append(missing, h)
				}
			}
			return missing
		})
		for _, h := range missing {
			t.Errorf("Prometheus stored no exemplar for %s", h)
		}
	})

	t.Run("admin listeners serve CPU profiles; the public one does not", func(t *testing.T) {
		for job, addr := range s.adminTargets() {
			t.Logf("%s: %d byte CPU profile", job, len(testenv.FetchCPUProfile(t, "http://"+addr, 1)))
		}
		resp, err := http.Get(s.edgeURL + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("public listener GET /debug/pprof/: %d, want 404", resp.StatusCode)
		}
	})
}

// eventually calls check until it returns nothing or within passes; it
// returns the last problems.
func eventually(ctx context.Context, within time.Duration, check func() []string) []string {
	deadline := time.Now().Add(within)
	for {
		problems := check()
		if len(problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return problems
		}
		time.Sleep(time.Second)
	}
}

// driveTraffic sends what an operator's dashboard should show: good
// checkouts, a duplicate delivery, a poison event (unknown content, dead
// lettered), a refund, a dispute, a rejected signature and a malformed body;
// and through the purchase API a checkout Stripe fails (500: a 502), one it
// creates,
// the same again (the open session reused), access checks, a purchase
// history and an unauthenticated call.
func driveTraffic(t *testing.T, s *stack) {
	t.Helper()
	driveAPI(t, s)
	var first, second stripefixture.Checkout
	var firstEvent []byte
	for i := range 5 {
		c := stripefixture.Checkout{
			PaymentIntentID: stripefixture.NewID("pi_", 24), AmountTotal: price, Currency: "usd",
			Metadata: stripefixture.PurchaseMetadata(fmt.Sprintf("user_live_%d", i), s.content.String(), s.org.String(), price, "usd"),
		}
		ev := mustEvent(t)(stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{}, c))
		post(t, s, ev, s.secret, http.StatusOK)
		switch i {
		case 0:
			first, firstEvent = c, ev
		case 1:
			second = c
		}
	}
	post(t, s, firstEvent, s.secret, http.StatusOK) // Stripe retries: a duplicate

	poison := stripefixture.Checkout{AmountTotal: price, Currency: "usd",
		Metadata: stripefixture.PurchaseMetadata("user_live_poison", "00000000-0000-4000-8000-00000000dead", s.org.String(), price, "usd")}
	post(t, s, mustEvent(t)(stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{}, poison)), s.secret, http.StatusOK)

	// The refund and the dispute must follow their purchases; give the
	// processor a moment (an early one would only be retried).
	time.Sleep(2 * time.Second)
	refund := mustEvent(t)(stripefixture.ChargeRefundedEvent(stripefixture.Meta{}, stripefixture.Charge{
		PaymentIntentID: first.PaymentIntentID, Amount: price, Refunds: []stripefixture.Refund{{Amount: price}}}))
	post(t, s, refund, s.secret, http.StatusOK)
	dispute := mustEvent(t)(stripefixture.DisputeEvent("charge.dispute.created", stripefixture.Meta{}, stripefixture.Dispute{
		PaymentIntentID: second.PaymentIntentID, Amount: price}))
	post(t, s, dispute, s.secret, http.StatusOK)

	post(t, s, firstEvent, stripefixture.NewSecret(), http.StatusUnauthorized)
	post(t, s, []byte(`{"not": "an event"`), s.secret, http.StatusBadRequest)
}

func mustEvent(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func post(t *testing.T, s *stack, body []byte, secret string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.edgeURL+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripefixture.Sign(body, secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST webhook: %d %s, want %d", resp.StatusCode, b, want)
	}
}

// panelQuery is one query of one dashboard panel, Grafana variables
// substituted.
type panelQuery struct {
	key  string // panel title / refId
	expr string
}

func panelQueries(t *testing.T) []panelQuery {
	t.Helper()
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels json.RawMessage `json:"panels"`
	}
	var walk func(raw json.RawMessage) []panelQuery
	walk = func(raw json.RawMessage) []panelQuery {
		var ps []panel
		if len(raw) == 0 {
			return nil
		}
		if err := json.Unmarshal(raw, &ps); err != nil {
			t.Fatalf("parse %s: %v", dashboardPath, err)
		}
		var out []panelQuery
		for _, p := range ps {
			for _, q := range p.Targets {
				out = append(out, panelQuery{key: p.Title + "/" + q.RefID, expr: grafanaVariables.Replace(q.Expr)})
			}
			out = append(out, walk(p.Panels)...)
		}
		return out
	}
	var d struct {
		Panels json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(readRepoFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardPath, err)
	}
	return walk(d.Panels)
}

// selectorNames returns the metric names expr selects.
func selectorNames(t *testing.T, expr string) []string {
	t.Helper()
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

// family maps a histogram's series (_bucket, _sum, _count) to the family name,
// so a panel reading _bucket counts as using _sum and _count too.
func family(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

// readRepoFile reads a file by its path from the repository root.
func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// driveAPI exercises every route of the purchase API and one Stripe failure.
func driveAPI(t *testing.T, s *stack) {
	t.Helper()
	call := func(method, path, key string, body any, want int) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, s.apiURL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
	}
	checkout := map[string]string{"customer_id": "user_live_api", "content_id": s.content.String()}
	s.apiStripe.FailNext(apitest.Failure{Status: http.StatusInternalServerError}) // not retried: 502, nothing written
	call(http.MethodPost, "/v1/checkout/sessions", apiKey, checkout, http.StatusBadGateway)
	call(http.MethodPost, "/v1/checkout/sessions", apiKey, checkout, http.StatusCreated)
	call(http.MethodPost, "/v1/checkout/sessions", apiKey, checkout, http.StatusOK) // the open session, reused
	call(http.MethodGet, "/v1/customers/user_live_api/access/"+s.content.String(), apiKey, nil, http.StatusOK)
	call(http.MethodGet, "/v1/customers/user_live_api/purchases", apiKey, nil, http.StatusOK)
	call(http.MethodGet, "/v1/customers/user_live_api/purchases", "wrong_key_0123456789", nil, http.StatusUnauthorized)
}
