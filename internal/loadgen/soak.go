package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/streams"
)

// RunSoak runs the real stack (cmd/edge, cmd/processor and nats-server as
// processes) for cfg.Duration at half its probed capacity with Stripe-style
// duplicates and periodic faults, lets the backlog drain and counts what
// became of every accepted event. The steps live beside it: soak_load.go
// sends, soak_faults.go breaks things, soak_verify.go drains and counts,
// soak_usage.go samples memory and goroutines, process.go runs the binaries.
func RunSoak(ctx context.Context, bdb *bun.DB, cfg SoakConfig) (SoakReport, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return SoakReport{}, err
	}
	s := &soak{cfg: cfg, db: bdb, accepted: map[string]bool{}, sessions: map[string]bool{},
		rep: SoakReport{Faults: map[string]int{}, ByStatus: map[string]int{}, Tolerance: cfg.Tolerance}}
	s.rep.LoadAvgBefore = loadAvg()
	defer s.stopAll()
	if err := s.start(ctx); err != nil {
		return s.rep, err
	}
	payloads, err := NewPayloads(cfg.Payload)
	if err != nil {
		return s.rep, err
	}
	s.payloads = payloads

	// 1. Capacity: unthrottled for cfg.Probe, then until everything committed.
	s.progressf("soak: probing capacity for %s (unthrottled, %d senders)", cfg.Probe, cfg.Concurrency)
	t0 := time.Now()
	s.load(ctx, cfg.Probe, 0, false)
	if err := s.drain(ctx); err != nil {
		return s.rep, fmt.Errorf("soak: capacity probe: %w", err)
	}
	probed, err := bdb.NewSelect().Table("stripe_events").Count(ctx)
	if err != nil {
		return s.rep, err
	}
	s.rep.Capacity = float64(probed) / time.Since(t0).Seconds()
	s.rep.Offered = cfg.Rate
	if s.rep.Offered == 0 {
		s.rep.Offered = s.rep.Capacity / 2
	}
	s.progressf("soak: capacity %.0f events/s; offering %.0f events/s for %s", s.rep.Capacity, s.rep.Offered, cfg.Duration)

	// 2. The soak: paced load with duplicates, and faults on a ticker.
	time.Sleep(cfg.Tolerance.SettleAfterLoad)
	start, err := s.usage(ctx)
	if err != nil {
		return s.rep, err
	}
	faultsDone := make(chan struct{})
	fctx, stopFaults := context.WithCancel(ctx)
	go func() { defer close(faultsDone); s.faults(ctx, fctx) }()
	begin := time.Now()
	s.load(ctx, cfg.Duration, s.rep.Offered, true)
	s.rep.Elapsed = time.Since(begin)
	stopFaults()
	<-faultsDone
	if err := ctx.Err(); err != nil {
		return s.rep, err
	}

	// 3. Drain, settle, count.
	s.progressf("soak: load done; draining (at most %s)", cfg.Drain)
	dstart := time.Now()
	derr := s.drain(ctx)
	s.rep.Drained = time.Since(dstart)
	if derr != nil && ctx.Err() != nil {
		return s.rep, derr
	}
	time.Sleep(cfg.Tolerance.SettleAfterLoad)
	end, err := s.usage(ctx)
	if err != nil {
		return s.rep, err
	}
	s.rep.Components = pairUsage(start, end, s.restarts())
	if err := s.count(ctx); err != nil {
		return s.rep, err
	}
	s.rep.LoadAvgAfter = loadAvg()
	return s.rep, nil
}

// soak is one run's state.
type soak struct {
	cfg      SoakConfig
	db       *bun.DB
	payloads *Payloads

	port   int // the broker's client port, the same across its restarts
	nc     *natsConn
	broker *process
	edge   *process
	procs  []*process

	progressMu sync.Mutex // the load and fault goroutines both report progress

	mu       sync.Mutex
	accepted map[string]bool // event ids answered 200
	sessions map[string]bool // their checkout sessions
	rep      SoakReport
}

// progressf writes one progress line; safe from any goroutine.
func (s *soak) progressf(format string, args ...any) {
	if s.cfg.Progress != nil {
		s.progressMu.Lock()
		defer s.progressMu.Unlock()
		fmt.Fprintf(s.cfg.Progress, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
	}
}

// start launches the broker, the edge and the processors and waits until all
// are ready.
func (s *soak) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	logs := filepath.Dir(s.cfg.StoreDir)
	s.broker = &process{name: "broker", kind: kindBroker, bin: s.cfg.BrokerBin, logDir: logs, args: []string{
		"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", s.cfg.StoreDir}}
	if err := s.broker.start(ctx); err != nil {
		return err
	}
	nc, err := connectNATS(s.natsURL(), s.cfg.Log)
	if err != nil {
		return err
	}
	s.nc = nc
	secret := "whsec_soak_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dsn, err := withAppName(s.cfg.DatabaseURL, soakAppName)
	if err != nil {
		return err
	}
	s.edge = &process{name: "edge", kind: kindEdge, bin: s.cfg.EdgeBin, logDir: logs, env: map[string]string{
		"NATS_URL": s.natsURL(), "STRIPE_WEBHOOK_SECRET": secret, "EDGE_RATE_LIMIT": "0", "LOG_LEVEL": "warn"}}
	s.edge.secret = secret
	for i := range s.cfg.Processors {
		s.procs = append(s.procs, &process{name: fmt.Sprintf("processor-%d", i+1), kind: kindProcessor, bin: s.cfg.ProcessorBin, logDir: logs,
			env: map[string]string{"NATS_URL": s.natsURL(), "DATABASE_URL": dsn, "LOG_LEVEL": "warn"}})
	}
	for _, p := range append([]*process{s.edge}, s.procs...) {
		for k, v := range s.cfg.Env {
			if _, ours := p.env[k]; !ours {
				p.env[k] = v
			}
		}
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	s.progressf("soak: broker pid %d on %s, edge pid %d, %d processor(s); logs in %s",
		s.broker.pid(), s.natsURL(), s.edge.pid(), len(s.procs), logs)
	return nil
}

func (s *soak) natsURL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *soak) stopAll() {
	for _, p := range append([]*process{s.edge}, s.procs...) {
		if p != nil {
			p.stop()
		}
	}
	if s.nc != nil {
		s.nc.close()
	}
	if s.broker != nil {
		s.broker.stop()
	}
}

// withAppName sets application_name on a postgres URL.
func withAppName(dsn, name string) (string, error) {
	cfgURL, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := cfgURL.Query()
	q.Set("application_name", name)
	cfgURL.RawQuery = q.Encode()
	return cfgURL.String(), nil
}

// natsConn is the soak's own connection to the broker, for consumer and DLQ
// state; it reconnects across broker restarts.
type natsConn struct {
	close func()
	js    jetstream.JetStream
}

// connectNATS opens the soak's own connection to the broker at natsURL.
func connectNATS(natsURL string, log *slog.Logger) (*natsConn, error) {
	nc, err := streams.Connect(natsURL, "paystream-soak", log)
	if err != nil {
		return nil, err
	}
	js, err := streams.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsConn{close: nc.Close, js: js}, nil
}
