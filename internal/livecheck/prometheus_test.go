package livecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
)

// promServer is a Prometheus process started for one test.
type promServer struct {
	base string // http://127.0.0.1:port
}

// prometheusBinary finds the prometheus binary, or skips (fails under CI)
// when it is not installed.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	const msg = "prometheus binary not found: install Debian's prometheus package (.ci/run does) to run the live dashboard and alert check"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// rulesWithShortFor writes the repository's alert rules to dir with a 1 s
// evaluation interval and the `for:` of the alerts in short shortened to 1 s,
// and returns the file's path.
func rulesWithShortFor(t *testing.T, dir string, short ...string) string {
	t.Helper()
	var rules struct {
		Groups []map[string]any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, alertsPath), &rules); err != nil {
		t.Fatalf("parse %s: %v", alertsPath, err)
	}
	for _, g := range rules.Groups {
		g["interval"] = "1s"
		rs, _ := g["rules"].([]any)
		for _, r := range rs {
			rule, _ := r.(map[string]any)
			for _, name := range short {
				if rule["alert"] == name {
					rule["for"] = "1s"
				}
			}
		}
	}
	b, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alerts.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPrometheus runs Prometheus with a temporary config and data directory
// on a random port, scraping each target (job name → host:port) every second
// and evaluating rulesFile every second. It is stopped by its PID at cleanup.
func startPrometheus(t *testing.T, targets map[string]string, rulesFile string) *promServer {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %q\nscrape_configs:\n", rulesFile)
	jobs := make([]string, 0, len(targets))
	for job := range targets {
		jobs = append(jobs, job)
	}
	sort.Strings(jobs)
	for _, job := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", job, targets[job])
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// A free port can be taken between probing and Prometheus binding it;
	// try a few.
	var lastErr error
	for range 3 {
		addr := freeAddr(t)
		logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--enable-feature=exemplar-storage",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			logf.Close()
		}
		p := &promServer{base: "http://" + addr}
		if lastErr = p.waitReady(exited); lastErr == nil {
			t.Cleanup(stop)
			return p
		}
		stop()
		out, _ := os.ReadFile(logf.Name())
		lastErr = fmt.Errorf("%w; log:\n%s", lastErr, out)
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return nil
}

func (p *promServer) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("prometheus at %s not ready within 60s", p.base)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// get calls the HTTP API at path with query parameters and decodes data
// into v.
func (p *promServer) get(ctx context.Context, path string, params url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates expr now and returns the samples (a scalar counts as one).
func (p *promServer) query(ctx context.Context, expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v []sample
		err := json.Unmarshal(data.Result, &v)
		return v, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(data.Result, &v)
		return []sample{{Value: v}}, err
	default:
		return nil, fmt.Errorf("query %q: result type %s", expr, data.ResultType)
	}
}

// metricNames returns every metric name Prometheus has stored.
func (p *promServer) metricNames(ctx context.Context) ([]string, error) {
	var names []string
	err := p.get(ctx, "/api/v1/label/__name__/values", url.Values{}, &names)
	return names, err
}

// ruleState is one rule of /api/v1/rules.
type ruleState struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	State     string `json:"state"` // alerting rules: inactive, pending, firing
	Type      string `json:"type"`
}

// rules returns every loaded rule with its health and state.
func (p *promServer) rules(ctx context.Context) ([]ruleState, error) {
	var data struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []ruleState
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// exemplars returns the exemplars stored for the series of expr in the last
// hour.
func (p *promServer) exemplars(ctx context.Context, expr string) (int, error) {
	var data []struct {
		Exemplars []json.RawMessage `json:"exemplars"`
	}
	now := time.Now()
	err := p.get(ctx, "/api/v1/query_exemplars", url.Values{"query": {expr},
		"start": {fmt.Sprint(now.Add(-time.Hour).Unix())}, "end": {fmt.Sprint(now.Unix() + 1)}}, &data)
	n := 0
	for _, d := range data {
		n += len(d.Exemplars)
	}
	return n, err
}
