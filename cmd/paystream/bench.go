package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/obs"
)

// benchReport is the machine-readable output of `paystream bench … --json`.
type benchReport = loadgen.Report

func runBench(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: paystream bench edge     --concurrency N --duration D [--rate R] [--size bytes] [--json]")
		fmt.Fprintln(stderr, "       paystream bench pipeline --events N [--processors K] [--json]")
		fmt.Fprintln(stderr, "       paystream bench soak     --duration D [--fault-every P] [--json]")
		fmt.Fprintln(stderr, "       paystream bench api      [--route access|payee] --concurrency N --duration D [--ledger-entries N] [--net-http] [--cpuprofile F] [--json]")
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
	case "soak":
		return benchSoak(ctx, args[1:], getenv, stdout, stderr)
	case "api":
		return benchAPI(ctx, args[1:], getenv, stdout, stderr)
	case "api-server": // the API process of `bench api`; not in the usage
		return benchAPIServer(ctx, args[1:], getenv, stdout, stderr)
	default:
		usage()
		return errUsage
	}
}

// benchEdge drives a running edge and the same events straight to JetStream
// (loadgen.RunEdgeBench) and prints the report.
func benchEdge(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var c loadgen.EdgeBenchConfig
	fs := flag.NewFlagSet("bench edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", loadgen.DefaultEdgeURL, "edge webhook URL")
	secret := fs.String("secret", "", "signing secret (default: $STRIPE_WEBHOOK_SECRET, else the one `paystream dev` generated)")
	dataDir := fs.String("data-dir", "./.paystream", "where `paystream dev` keeps its generated secret")
	fs.StringVar(&c.MetricsURL, "metrics-url", "http://127.0.0.1:9090/metrics", "edge /metrics, sampled for resident memory and CPU time (\"\" to skip)")
	fs.IntVar(&c.PID, "pid", 0, "edge process id: CPU time per event from /proc/<pid>/stat (default: process_cpu_seconds_total of --metrics-url); under `paystream dev` the embedded broker is the same process, so the baseline row is the broker alone")
	fs.IntVar(&c.Concurrency, "concurrency", loadgen.DefaultEdgeConcurrency, "requests in flight")
	fs.DurationVar(&c.Duration, "duration", loadgen.DefaultEdgeDuration, "length of each measured run")
	fs.Float64Var(&c.Rate, "rate", 0, "offered load in requests/s (0 = closed loop, as fast as possible)")
	fs.BoolVar(&c.NetHTTP, "net-http", false, "post through net/http's client instead of the load tool's own keep-alive client (which costs the shared machine less CPU)")
	fs.IntVar(&c.Size, "size", 0, "pad each event to about this many bytes (0 = natural size)")
	fs.BoolVar(&c.SkipBaseline, "skip-baseline", false, "measure the edge only")
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
	c.Secret, c.NATSURL = sec, common.NATSURL
	rep, err := loadgen.RunEdgeBench(ctx, c, stderr)
	if err != nil {
		return err
	}
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

// benchLogger is the log of a bench's services: discarded, unless LOG_LEVEL
// is set, then on stderr at that level.
func benchLogger(getenv config.Getenv, common config.Common, stderr io.Writer) *slog.Logger {
	if getenv("LOG_LEVEL") == "" {
		return obs.NewLogger(io.Discard, slog.LevelError, "bench")
	}
	return obs.NewLogger(stderr, common.LogLevel, "bench")
}
