package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// Defaults of EdgeBenchConfig.
const (
	DefaultEdgeURL         = "http://127.0.0.1:8080/webhooks/stripe" // `paystream dev`'s edge
	DefaultEdgeConcurrency = 16                                      // requests in flight
	DefaultEdgeDuration    = 10 * time.Second                        // per measured run
)

// EdgeBenchConfig drives RunEdgeBench (`paystream bench edge`). Zero fields
// take the defaults of setDefaults.
type EdgeBenchConfig struct {
	URL    string // the running edge's webhook URL; default DefaultEdgeURL
	Secret string // its endpoint's signing secret; required
	// NATSURL is the broker the edge publishes to; the baseline publishes
	// there too. Required unless SkipBaseline.
	NATSURL     string
	MetricsURL  string        // the edge's /metrics, sampled for resident memory and CPU time ("" = skip)
	PID         int           // the edge's process id, for its CPU time from /proc (see EdgeConfig.PID)
	Concurrency int           // requests in flight; default DefaultEdgeConcurrency
	Duration    time.Duration // length of each measured run; default DefaultEdgeDuration
	Rate        float64       // offered requests/s; 0 = closed loop, as fast as possible
	Size        int           // pad each event to about this many bytes; 0 = natural size
	// SkipBaseline measures the edge only.
	SkipBaseline bool
	// NetHTTP posts through net/http's client instead of the load tool's
	// own keep-alive client, which costs the shared machine less CPU.
	NetHTTP bool
}

func (c *EdgeBenchConfig) setDefaults() {
	if c.URL == "" {
		c.URL = DefaultEdgeURL
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultEdgeConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultEdgeDuration
	}
}

func (c *EdgeBenchConfig) validate() error {
	switch {
	case c.Secret == "":
		return errors.New("loadgen: edge bench: Secret is required")
	case c.NATSURL == "" && !c.SkipBaseline:
		return errors.New("loadgen: edge bench: NATSURL is required for the baseline")
	case c.Concurrency < 1:
		return fmt.Errorf("loadgen: edge bench: Concurrency %d must be at least 1", c.Concurrency)
	}
	return nil
}

// RunEdgeBench drives a running edge with unique signed checkout events for
// cfg.Duration, then publishes the same events straight to JetStream (sync,
// Nats-Msg-Id) at the same concurrency, and reports edge ÷ baseline.
// Progress lines and warnings go to progress (nil = quiet).
func RunEdgeBench(ctx context.Context, cfg EdgeBenchConfig, progress io.Writer) (Report, error) {
	if err := prepare(&cfg); err != nil {
		return Report{}, err
	}
	progress = orDiscard(progress)
	payloads, err := demoPayloads(cfg.Size)
	if err != nil {
		return Report{}, err
	}
	ecfg := EdgeConfig{URL: cfg.URL, Secret: cfg.Secret, Concurrency: cfg.Concurrency, Duration: cfg.Duration,
		Rate: cfg.Rate, MetricsURL: cfg.MetricsURL, PID: cfg.PID, Progress: progress, Payload: PayloadSpec{Size: cfg.Size},
		NetHTTP: cfg.NetHTTP}
	client := "load tool's keep-alive HTTP/1.1"
	if cfg.NetHTTP {
		client = "net/http"
	}
	rep := Report{Kind: "edge", Machine: Machine(), Started: time.Now(),
		Extra: map[string]any{"event_bytes": payloads.Len(), "rate": cfg.Rate, "http_client": client}}
	fmt.Fprintf(progress, "bench edge: %d-byte events, concurrency %d, %s per run, %s\n",
		payloads.Len(), cfg.Concurrency, cfg.Duration, rep.Machine)

	edgeRes, err := RunEdge(ctx, ecfg, payloads)
	if err != nil {
		return Report{}, err
	}
	rep.Results = append(rep.Results, edgeRes)
	if edgeRes.ByStatus["429"] > 0 {
		fmt.Fprintln(progress, "warning: the edge rate-limited the load tool; run it with EDGE_RATE_LIMIT=0")
	}
	if !cfg.SkipBaseline {
		nc, js, err := connectBench(cfg.NATSURL, slog.New(slog.DiscardHandler))
		if err != nil {
			return Report{}, err
		}
		defer nc.Close()
		base, err := RunBaseline(ctx, js, ecfg, payloads)
		if err != nil {
			return Report{}, err
		}
		rep.Results = append(rep.Results, base)
		if base.PerSecond > 0 {
			rep.Ratio = edgeRes.PerSecond / base.PerSecond
		}
	}
	rep.Finished = time.Now()
	return rep, nil
}

// connectBench connects to natsURL as paystream-bench and returns the
// connection, for the caller to close, and its JetStream context.
func connectBench(natsURL string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := streams.Connect(natsURL, "paystream-bench", log)
	if err != nil {
		return nil, nil, err
	}
	js, err := streams.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
