package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/streams"
)

// benchReport is the machine-readable output of `paystream bench … --json`.
type benchReport struct {
	Kind     string           `json:"kind"`
	Machine  string           `json:"machine"`
	Results  []loadgen.Result `json:"results"`
	Ratio    float64          `json:"ratio"` // subject ÷ baseline throughput
	E2E      *loadgen.Latency `json:"e2e,omitempty"`
	Extra    map[string]any   `json:"extra,omitempty"`
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished"`
}

func runBench(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: paystream bench edge     --concurrency N --duration D [--rate R] [--size bytes] [--json]")
		fmt.Fprintln(stderr, "       paystream bench pipeline --events N [--processors K] [--json]")
		fmt.Fprintln(stderr, "       paystream bench api      --concurrency N --duration D [--json]")
		fmt.Fprintln(stderr, "each run measures paystream and its baseline in the same run and prints the ratio; see docs/benchmarks.md")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "edge":
		return benchEdge(ctx, args[1:], getenv, stdout, stderr)
	case "pipeline":
		return benchPipeline(ctx, args[1:], getenv, stdout, stderr)
	case "api":
		return benchAPI(ctx, args[1:], getenv, stdout, stderr)
	default:
		usage()
		return errUsage
	}
}

func benchEdge(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/webhooks/stripe", "edge webhook URL")
	secret := fs.String("secret", "", "signing secret (default: $STRIPE_WEBHOOK_SECRET, else the one `paystream dev` generated)")
	dataDir := fs.String("data-dir", "./.paystream", "where `paystream dev` keeps its generated secret")
	metricsURL := fs.String("metrics-url", "http://127.0.0.1:9090/metrics", "edge /metrics, sampled for resident memory and CPU time (\"\" to skip)")
	pid := fs.Int("pid", 0, "edge process id: CPU time per event from /proc/<pid>/stat (default: process_cpu_seconds_total of --metrics-url); under `paystream dev` the embedded broker is the same process, so the baseline row is the broker alone")
	conc := fs.Int("concurrency", 16, "requests in flight")
	dur := fs.Duration("duration", 10*time.Second, "length of each measured run")
	rps := fs.Float64("rate", 0, "offered load in requests/s (0 = closed loop, as fast as possible)")
	size := fs.Int("size", 0, "pad each event to about this many bytes (0 = natural size)")
	skipBase := fs.Bool("skip-baseline", false, "measure the edge only")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench edge [flags]",
		"drives a running edge with unique signed checkout events, then publishes the same events straight to",
		"JetStream (sync, Nats-Msg-Id) at the same concurrency, and prints edge ÷ baseline. env: NATS_URL",
		"the edge must run with EDGE_RATE_LIMIT=0, and no processor should consume STRIPE_EVENTS meanwhile",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	so := sendOptions{secret: *secret, dataDir: *dataDir}
	sec, err := so.resolveSecret(getenv)
	if err != nil {
		return err
	}
	payloads, err := loadgen.NewPayloads(loadgen.PayloadSpec{ContentID: demo.ContentID, OrganizationID: demo.OrganizationID,
		Amount: demo.PriceCents, Currency: demo.Currency, Size: *size})
	if err != nil {
		return err
	}
	cfg := loadgen.EdgeConfig{URL: *url, Secret: sec, Concurrency: *conc, Duration: *dur, Rate: *rps,
		MetricsURL: *metricsURL, PID: *pid, Progress: stderr, Payload: loadgen.PayloadSpec{Size: *size}}
	rep := benchReport{Kind: "edge", Machine: machine(), Started: time.Now(),
		Extra: map[string]any{"event_bytes": payloads.Len(), "rate": *rps}}
	fmt.Fprintf(stderr, "bench edge: %d-byte events, concurrency %d, %s per run, %s\n", payloads.Len(), *conc, *dur, rep.Machine)

	edgeRes, err := loadgen.RunEdge(ctx, cfg, payloads)
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, edgeRes)
	if edgeRes.ByStatus["429"] > 0 {
		fmt.Fprintln(stderr, "warning: the edge rate-limited the load tool; run it with EDGE_RATE_LIMIT=0")
	}
	if !*skipBase {
		nc, err := streams.Connect(common.NATSURL, "paystream-bench", slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := streams.NewJetStream(nc)
		if err != nil {
			return err
		}
		base, err := loadgen.RunBaseline(ctx, js, cfg, payloads)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, base)
		if base.PerSecond > 0 {
			rep.Ratio = edgeRes.PerSecond / base.PerSecond
		}
	}
	rep.Finished = time.Now()
	return printBench(stdout, rep, *asJSON)
}

func printBench(w io.Writer, rep benchReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "%s (%s)\n", rep.Kind, rep.Machine)
	for _, r := range rep.Results {
		fmt.Fprintln(w, "  "+r.String())
	}
	if rep.Ratio > 0 {
		fmt.Fprintf(w, "  ratio %s/baseline = %.2fx\n", rep.Kind, rep.Ratio)
	}
	keys := make([]string, 0, len(rep.Extra))
	for k := range rep.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %v\n", k, rep.Extra[k])
	}
	return nil
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}
