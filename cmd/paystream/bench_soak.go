package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/loadgen"
)

// errSoakFailed is returned when the soak ran but its verdict is FAIL.
var errSoakFailed = errors.New("bench soak: verdict FAIL")

// benchSoak runs the real binaries for --duration at half their probed
// capacity with duplicates and faults, and prints what became of every
// accepted event and how each component's memory and goroutines moved.
func benchSoak(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.SoakConfig
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "length of the soak (after the capacity probe)")
	fs.DurationVar(&c.Probe, "probe", 20*time.Second, "length of the unthrottled capacity probe")
	fs.Float64Var(&c.Rate, "rate", 0, "offered events/s (0 = half the probed capacity)")
	fs.IntVar(&c.Concurrency, "concurrency", 32, "senders")
	fs.IntVar(&c.Processors, "processors", 2, "processor processes; the last one is the SIGKILL victim")
	fs.DurationVar(&c.FaultEvery, "fault-every", 30*time.Second, "one fault per period, cycling Postgres sessions killed, broker restarted, processor SIGKILLed (0 = none)")
	fs.Float64Var(&c.DupRetry, "dup-retry", 0.1, "fraction of events resent with the same event id")
	fs.Float64Var(&c.DupSession, "dup-session", 0.05, "fraction of checkout sessions sent again under a second event id")
	fs.DurationVar(&c.Drain, "drain", 3*time.Minute, "bound on the final backlog drain")
	fs.Uint64Var(&c.Tolerance.BytesPerID, "bytes-per-id", loadgen.DedupBytesPerID, "the broker's live heap allowed per message id its dedup window remembers (measured: go test -bench DedupMemoryPerID ./streams/)")
	fs.Uint64Var(&c.Tolerance.BlockCaches, "block-caches", loadgen.DefaultBlockCaches, "the broker's live heap allowed for its file store's block caches (bytes)")
	fs.DurationVar(&c.Tolerance.SettleAfterLoad, "settle", loadgen.DefaultSettle, "idle time before each usage sample (start and end); the edge's idle connection goroutines need 20s to go")
	edgeBin := fs.String("edge-bin", "", "a built cmd/edge (default: go build it into a temp dir)")
	procBin := fs.String("processor-bin", "", "a built cmd/processor (default: go build it into a temp dir)")
	brokerBin := fs.String("broker-bin", "", "a built nats-server (default: go build github.com/nats-io/nats-server/v2, the version in go.mod)")
	c.Env = map[string]string{}
	fs.Func("env", "`KEY=VALUE` added to the edge's and processors' environment (repeatable), e.g. PROCESSOR_ACK_WAIT=5s", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		c.Env[k] = v
		return nil
	})
	keepDB := fs.Bool("keep-db", false, "keep the scratch database")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench soak --duration D [flags]",
		"runs cmd/edge, cmd/processor and nats-server as processes on loopback with a scratch database, probes",
		"the end-to-end capacity, then offers half of it for D with Stripe-style duplicates and periodic faults,",
		"drains, and prints events accepted, purchases, duplicates, dead letters, RSS and goroutines at start",
		"and end of each component, and a verdict (exit status 1 on FAIL).",
		"env: DATABASE_URL (a scratch database is created on that server and dropped afterwards)",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	c.Log = benchLogger(getenv, common, stderr)
	c.Progress = stderr

	dir, err := os.MkdirTemp("", "paystream-soak-")
	if err != nil {
		return err
	}
	// A failed soak keeps its components' logs (not the broker's store,
	// which grows to gigabytes) for the post-mortem.
	keepLogs := false
	c.StoreDir = filepath.Join(dir, "nats")
	defer func() {
		if !keepLogs {
			_ = os.RemoveAll(dir)
			return
		}
		_ = os.RemoveAll(c.StoreDir)
		fmt.Fprintf(stderr, "bench soak: the components' logs are kept in %s\n", dir)
	}()
	c.EdgeBin, c.ProcessorBin, c.BrokerBin = *edgeBin, *procBin, *brokerBin
	if err := c.BuildBinaries(ctx, dir, stderr); err != nil {
		return fmt.Errorf("bench soak: %w (or pass --edge-bin, --processor-bin and --broker-bin)", err)
	}

	sdb, err := loadgen.OpenDemoDatabase(ctx, common.DatabaseURL, *keepDB, 4)
	if err != nil {
		return err
	}
	defer sdb.Close()
	c.Payload = loadgen.DemoPayloadSpec(0)
	fmt.Fprintf(stderr, "bench soak: %s soak, %d processor(s), fault every %s, %s\n", c.Duration, c.Processors, c.FaultEvery, loadgen.Machine())

	c.DatabaseURL = sdb.URL
	rep, err := loadgen.RunSoak(ctx, sdb.DB, c)
	if err != nil {
		keepLogs = true
		return err
	}
	if *asJSON {
		ok, reasons := rep.Verdict()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			loadgen.SoakReport
			Machine string   `json:"machine"`
			Pass    bool     `json:"pass"`
			Reasons []string `json:"reasons,omitempty"`
		}{rep, loadgen.Machine(), ok, reasons}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "soak (%s)\n", loadgen.Machine())
		if _, err := rep.WriteTo(stdout); err != nil {
			return err
		}
	}
	if ok, _ := rep.Verdict(); !ok {
		keepLogs = true
		return errSoakFailed
	}
	return nil
}
