package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"
	"golang.org/x/time/rate"

	"github.com/paystream/paystream/streams"
)

// Fault kinds the soak injects, in the order it cycles through them.
const (
	FaultPostgres  = "pg_terminate_backend" // the processors' database sessions killed
	FaultBroker    = "broker_restart"       // the embedded nats-server stopped and started on its store
	FaultProcessor = "processor_sigkill"    // one processor process SIGKILLed and started again
)

// soakAppName is the application_name of the processors' database sessions,
// so a Postgres fault hits them and nothing else on the shared server.
const soakAppName = "paystream-soak-processor"

// SoakConfig drives RunSoak.
type SoakConfig struct {
	EdgeBin, ProcessorBin string            // built cmd/edge and cmd/processor
	BrokerBin             string            // a built nats-server (github.com/nats-io/nats-server/v2)
	DatabaseURL           string            // a migrated, seeded scratch database the soak owns
	StoreDir              string            // the embedded broker's JetStream store (kept across its restarts)
	Processors            int               // processor processes (the last one is the SIGKILL victim); default 2
	Env                   map[string]string // extra environment for the edge and the processors, e.g. PROCESSOR_ACK_WAIT

	Duration    time.Duration // the soak itself, after the capacity probe
	Probe       time.Duration // unthrottled capacity probe; default 20s
	Rate        float64       // offered events/s; 0 = half the probed capacity
	Concurrency int           // senders; default 32
	FaultEvery  time.Duration // one fault per period, cycling through the kinds; 0 = none
	DupRetry    float64       // fraction of events resent as is (same event id); default 0.1
	DupSession  float64       // fraction of sessions sent again under a second event id; default 0.05
	RetryFor    time.Duration // how long a sender retries a refused event, as Stripe would; default 2m
	Drain       time.Duration // bound on the final backlog drain; default 3m
	Tolerance   Tolerance
	Payload     PayloadSpec
	Progress    io.Writer // one line per phase and fault; nil = quiet
	Log         *slog.Logger
}

// Tolerance is how far end-of-run memory and goroutines may sit above the
// start before the soak calls them growing: the larger of a ratio and an
// absolute slack, so small idle processes are not judged on noise.
type Tolerance struct {
	RSSRatio        float64       // default 0.5 (+50 %)
	RSSSlack        uint64        // default 24 MiB
	GoroutineRatio  float64       // default 0.25
	GoroutineSlack  int           // default 20
	SettleAfterLoad time.Duration // idle time before each usage sample, so both are taken at rest; default 3s
}

func (t *Tolerance) setDefaults() {
	if t.RSSRatio == 0 {
		t.RSSRatio = 0.5
	}
	if t.RSSSlack == 0 {
		t.RSSSlack = 24 << 20
	}
	if t.GoroutineRatio == 0 {
		t.GoroutineRatio = 0.25
	}
	if t.GoroutineSlack == 0 {
		t.GoroutineSlack = 20
	}
	if t.SettleAfterLoad == 0 {
		t.SettleAfterLoad = 3 * time.Second
	}
}

// String states the tolerance for the report.
func (t Tolerance) String() string {
	return fmt.Sprintf("end ≤ start × %.2f or start + %d MiB RSS (the larger); goroutines end ≤ start × %.2f or start + %d",
		1+t.RSSRatio, t.RSSSlack>>20, 1+t.GoroutineRatio, t.GoroutineSlack)
}

func (c *SoakConfig) setDefaults() {
	if c.Processors == 0 {
		c.Processors = 2
	}
	if c.Probe == 0 {
		c.Probe = 20 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.DupRetry == 0 {
		c.DupRetry = 0.1
	}
	if c.DupSession == 0 {
		c.DupSession = 0.05
	}
	if c.RetryFor == 0 {
		c.RetryFor = 2 * time.Minute
	}
	if c.Drain == 0 {
		c.Drain = 3 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.Tolerance.setDefaults()
}

func (c *SoakConfig) validate() error {
	switch {
	case c.EdgeBin == "" || c.ProcessorBin == "" || c.BrokerBin == "":
		return errors.New("soak: edge, processor and nats-server binaries are required")
	case c.DatabaseURL == "" || c.StoreDir == "":
		return errors.New("soak: a database URL and a broker store directory are required")
	case c.Duration <= 0:
		return errors.New("soak: duration must be positive")
	case c.Processors < 1:
		return errors.New("soak: at least one processor")
	case c.DupRetry < 0 || c.DupRetry > 1 || c.DupSession < 0 || c.DupSession > 1:
		return errors.New("soak: duplicate fractions must be within 0..1")
	}
	return nil
}

// Usage is one component's resident memory and goroutines at one moment.
type Usage struct {
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines"`
	// The broker only: messages and bytes stored in its streams, and the
	// message ids it holds in memory for deduplication (STREAM_DEDUP_WINDOW).
	StoredMsgs  uint64 `json:"stored_msgs,omitempty"`
	StoredBytes uint64 `json:"stored_bytes,omitempty"`
}

// ComponentUsage is a component's usage at the start and end of the soak.
type ComponentUsage struct {
	Name     string `json:"name"`
	Start    Usage  `json:"start"`
	End      Usage  `json:"end"`
	Restarts int    `json:"restarts"`           // the end is its latest run, still judged against the first start
	Unjudged bool   `json:"unjudged,omitempty"` // reported only (the load tool itself)
	Note     string `json:"note,omitempty"`
}

// flat says whether end stays within t of start.
func (u ComponentUsage) flat(t Tolerance) (bool, string) {
	if u.Unjudged {
		return true, ""
	}
	rssMax := max(uint64(float64(u.Start.RSS)*(1+t.RSSRatio)), u.Start.RSS+t.RSSSlack)
	grMax := max(int(float64(u.Start.Goroutines)*(1+t.GoroutineRatio)), u.Start.Goroutines+t.GoroutineSlack)
	var why []string
	if u.End.RSS > rssMax {
		why = append(why, fmt.Sprintf("RSS %s → %s (limit %s)", mib(u.Start.RSS), mib(u.End.RSS), mib(rssMax)))
	}
	if u.End.Goroutines > grMax {
		why = append(why, fmt.Sprintf("goroutines %d → %d (limit %d)", u.Start.Goroutines, u.End.Goroutines, grMax))
	}
	return len(why) == 0, strings.Join(why, ", ")
}

// SoakReport is what a soak saw and counted.
type SoakReport struct {
	Capacity float64       `json:"capacity_per_second"` // probed end-to-end (edge → committed) rate
	Offered  float64       `json:"offered_per_second"`
	Elapsed  time.Duration `json:"elapsed_ns"` // the soak phase

	Requests      int              `json:"requests"`        // every POST, retries and duplicates included
	ByStatus      map[string]int   `json:"by_status"`       // answers by HTTP status (transport errors as "transport_error")
	Retries       int              `json:"retries"`         // resends of a refused event (Stripe-style)
	GivenUp       int              `json:"given_up"`        // events never accepted within RetryFor
	Accepted      int              `json:"events_accepted"` // distinct event ids the edge answered 200
	Sessions      int              `json:"sessions"`        // distinct checkout sessions among them
	DupRetries    int              `json:"duplicate_retries"`
	DupSessions   int              `json:"duplicate_sessions"`
	Purchases     int              `json:"purchases"`
	Lost          int              `json:"lost"`           // accepted sessions without a purchase
	Doubled       int              `json:"doubled"`        // sessions with more than one purchase
	Unconfirmed   int              `json:"unconfirmed"`    // purchases of sessions never answered 200 (ambiguous 503s)
	EventsMissing int              `json:"events_missing"` // accepted event ids without a stripe_events row
	DeadLetters   uint64           `json:"dead_letters"`   // STRIPE_DLQ depth
	OutboxPending int              `json:"outbox_pending"` // outbox rows never published
	Backlog       uint64           `json:"backlog"`        // processor consumer pending + unacked at the end
	Faults        map[string]int   `json:"faults"`         // injected, by kind
	FaultErrors   []string         `json:"fault_errors,omitempty"`
	Components    []ComponentUsage `json:"components"`
	Tolerance     Tolerance        `json:"tolerance"`
	LoadAvgBefore string           `json:"loadavg_before"`
	LoadAvgAfter  string           `json:"loadavg_after"`
	Drained       time.Duration    `json:"drained_ns"`      // from the end of the load to an empty backlog
	DedupWindow   time.Duration    `json:"dedup_window_ns"` // STRIPE_EVENTS' duplicate window: the broker holds every id of it in memory
}

// Verdict says whether the soak held: nothing lost, nothing doubled, nothing
// dead-lettered or stuck, memory and goroutines flat. reasons lists every
// failure.
func (r SoakReport) Verdict() (ok bool, reasons []string) {
	if r.Accepted == 0 {
		reasons = append(reasons, "no event was accepted")
	}
	if r.Lost > 0 {
		reasons = append(reasons, fmt.Sprintf("%d accepted checkouts have no purchase", r.Lost))
	}
	if r.EventsMissing > 0 {
		reasons = append(reasons, fmt.Sprintf("%d accepted events were never recorded", r.EventsMissing))
	}
	if r.Doubled > 0 {
		reasons = append(reasons, fmt.Sprintf("%d checkouts have more than one purchase", r.Doubled))
	}
	if r.DeadLetters > 0 {
		reasons = append(reasons, fmt.Sprintf("%d dead letters", r.DeadLetters))
	}
	if r.Backlog > 0 || r.OutboxPending > 0 {
		reasons = append(reasons, fmt.Sprintf("not drained: %d events pending, %d outbox rows unpublished", r.Backlog, r.OutboxPending))
	}
	if r.GivenUp > 0 {
		reasons = append(reasons, fmt.Sprintf("%d events refused for longer than the retry window", r.GivenUp))
	}
	for _, c := range r.Components {
		if ok, why := c.flat(r.Tolerance); !ok {
			reasons = append(reasons, c.Name+" grew: "+why)
		}
	}
	return len(reasons) == 0, reasons
}

// WriteTo prints the report for humans.
func (r SoakReport) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "capacity (probed, edge → commit): %.0f events/s; offered %.0f events/s for %s\n",
		r.Capacity, r.Offered, r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "requests:           %d  %v  (retries %d, given up %d)\n", r.Requests, r.ByStatus, r.Retries, r.GivenUp)
	fmt.Fprintf(&b, "events accepted:    %d distinct event ids, %d checkout sessions\n", r.Accepted, r.Sessions)
	fmt.Fprintf(&b, "duplicates sent:    %d same event id, %d same session under a new event id\n", r.DupRetries, r.DupSessions)
	fmt.Fprintf(&b, "purchases:          %d  (lost %d, doubled %d, unconfirmed %d, events unrecorded %d)\n",
		r.Purchases, r.Lost, r.Doubled, r.Unconfirmed, r.EventsMissing)
	fmt.Fprintf(&b, "dead letters:       %d   outbox unpublished: %d   backlog: %d   drained in %s\n",
		r.DeadLetters, r.OutboxPending, r.Backlog, r.Drained.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "faults:             %s=%d %s=%d %s=%d", FaultPostgres, r.Faults[FaultPostgres],
		FaultBroker, r.Faults[FaultBroker], FaultProcessor, r.Faults[FaultProcessor])
	if len(r.FaultErrors) > 0 {
		fmt.Fprintf(&b, "  (errors: %s)", strings.Join(r.FaultErrors, "; "))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "load average:       before %s, after %s\n", r.LoadAvgBefore, r.LoadAvgAfter)
	fmt.Fprintf(&b, "broker dedup window: %s (the broker keeps every message id of the window in memory)\n", r.DedupWindow)
	fmt.Fprintf(&b, "%-22s %12s %12s %8s %8s\n", "component", "RSS start", "RSS end", "gor. st", "gor. end")
	for _, c := range r.Components {
		note := c.Note
		if c.Unjudged {
			note = "not judged: " + note
		}
		if c.Restarts > 0 {
			if note != "" {
				note += "; "
			}
			note += fmt.Sprintf("restarted %d×, end is its latest run", c.Restarts)
		}
		if c.End.StoredMsgs > 0 {
			note += fmt.Sprintf("; streams hold %d → %d msgs (%s → %s)", c.Start.StoredMsgs, c.End.StoredMsgs,
				mib(c.Start.StoredBytes), mib(c.End.StoredBytes))
		}
		fmt.Fprintf(&b, "%-22s %12s %12s %8d %8d  %s\n", c.Name, mib(c.Start.RSS), mib(c.End.RSS),
			c.Start.Goroutines, c.End.Goroutines, note)
	}
	fmt.Fprintf(&b, "tolerance:          %s\n", r.Tolerance)
	if ok, reasons := r.Verdict(); ok {
		b.WriteString("verdict: PASS — every accepted checkout became exactly one purchase, nothing dead-lettered, memory and goroutines flat\n")
	} else {
		fmt.Fprintf(&b, "verdict: FAIL — %s\n", strings.Join(reasons, "; "))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// RunSoak runs the real stack (cmd/edge and cmd/processor as processes, an
// embedded broker in this process) for cfg.Duration at half its probed
// capacity with Stripe-style duplicates and periodic faults, lets the backlog
// drain and counts what became of every accepted event.
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

// load sends events for d at rps (0 = as fast as the senders go); with dups,
// a fraction is sent again as Stripe does. Every event is retried until the
// edge answers 200 or RetryFor passes, even after d ends.
func (s *soak) load(ctx context.Context, d time.Duration, rps float64, dups bool) {
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var lim *rate.Limiter
	if rps > 0 {
		lim = rate.NewLimiter(rate.Limit(rps), max(1, int(rps/20)))
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: s.cfg.Concurrency * 2, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	defer client.CloseIdleConnections()
	var sent atomic.Int64
	s.mu.Lock()
	before := len(s.accepted)
	s.mu.Unlock()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.mu.Lock()
				acc := len(s.accepted)
				s.mu.Unlock()
				s.progressf("  %d new events sent, %d event ids accepted", sent.Load(), acc-before)
			}
		}
	}()
	defer close(stop)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var rngMu sync.Mutex
	roll := func(p float64) bool { rngMu.Lock(); defer rngMu.Unlock(); return rng.Float64() < p }
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for lctx.Err() == nil {
				if lim != nil && lim.Wait(lctx) != nil {
					return
				}
				var ids IDs
				buf, ids = s.payloads.Next(buf)
				sent.Add(1)
				// Retries outlive the load window, bounded by RetryFor.
				s.deliver(ctx, client, buf, ids.Event, ids.Session)
				if dups && roll(s.cfg.DupRetry) {
					s.count1(&s.rep.DupRetries)
					s.deliver(ctx, client, buf, ids.Event, ids.Session)
				}
				if dups && roll(s.cfg.DupSession) {
					body, evt := s.payloads.Reissue(buf)
					s.count1(&s.rep.DupSessions)
					s.deliver(ctx, client, body, evt, ids.Session)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *soak) count1(n *int) { s.mu.Lock(); *n++; s.mu.Unlock() }

// deliver posts body until the edge answers 200, as Stripe retries a
// refused webhook (here within seconds rather than hours), for at most
// RetryFor.
func (s *soak) deliver(ctx context.Context, client *http.Client, body []byte, event, session string) {
	deadline := time.Now().Add(s.cfg.RetryFor)
	target := "http://" + s.edge.addr + "/webhooks/stripe"
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		status := "transport_error"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Stripe-Signature", Sign(body, s.edge.secret, time.Now()))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			status = strconv.Itoa(resp.StatusCode)
		} else if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.rep.Requests++
		s.rep.ByStatus[status]++
		if attempt > 0 {
			s.rep.Retries++
		}
		if status == "200" {
			s.accepted[event] = true
			s.sessions[session] = true
		}
		s.mu.Unlock()
		if status == "200" {
			return
		}
		if time.Now().After(deadline) {
			s.count1(&s.rep.GivenUp)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// faults injects one fault per FaultEvery, cycling through the kinds.
func (s *soak) faults(ctx, tick context.Context) {
	if s.cfg.FaultEvery <= 0 {
		return
	}
	kinds := []string{FaultPostgres, FaultBroker, FaultProcessor}
	t := time.NewTicker(s.cfg.FaultEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-tick.Done():
			return
		case <-t.C:
		}
		// A fault under way completes even if the load ends meanwhile.
		kind := kinds[i%len(kinds)]
		err := s.fault(ctx, kind)
		s.mu.Lock()
		s.rep.Faults[kind]++
		if err != nil {
			s.rep.FaultErrors = append(s.rep.FaultErrors, kind+": "+err.Error())
		}
		s.mu.Unlock()
		s.progressf("  fault %s: %v", kind, errOrOK(err))
	}
}

func errOrOK(err error) any {
	if err == nil {
		return "done"
	}
	return err
}

func (s *soak) fault(ctx context.Context, kind string) error {
	switch kind {
	case FaultPostgres:
		var n int
		err := s.db.NewRaw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = ?`, soakAppName).Scan(ctx, &n)
		if err == nil && n == 0 {
			err = errors.New("no processor session to terminate")
		}
		return err
	case FaultBroker:
		s.broker.stop()
		time.Sleep(time.Second) // clients see the broker gone, not a blip
		return s.broker.start(ctx)
	case FaultProcessor:
		p := s.procs[len(s.procs)-1]
		if err := p.kill(); err != nil {
			return err
		}
		return p.start(ctx)
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// drain waits until the processor consumer has nothing pending or unacked
// and the outbox is empty, for at most cfg.Drain.
func (s *soak) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Drain)
	defer cancel()
	for {
		pending, outbox, err := s.backlog(ctx)
		s.rep.Backlog, s.rep.OutboxPending = pending, outbox
		if err == nil && pending == 0 && outbox == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("backlog not drained: %d pending, %d outbox rows (last error: %v)", pending, outbox, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *soak) backlog(ctx context.Context) (uint64, int, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := s.nc.js.Consumer(qctx, streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		return 1, 0, err
	}
	info, err := cons.Info(qctx)
	if err != nil {
		return 1, 0, err
	}
	outbox, err := s.db.NewSelect().Table("outbox").Where("published_at IS NULL").Count(qctx)
	if err != nil {
		return 1, 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), int(outbox), nil
}

// count compares what the edge accepted with what the database holds.
func (s *soak) count(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.Accepted, s.rep.Sessions = len(s.accepted), len(s.sessions)
	purchases := map[string]int{}
	rows, err := s.db.QueryContext(ctx, `SELECT stripe_checkout_session_id FROM purchases`)
	if err != nil {
		return fmt.Errorf("soak: count purchases: %w", err)
	}
	if err := scanStrings(rows, func(v string) { purchases[v]++; s.rep.Purchases++ }); err != nil {
		return err
	}
	for sess := range s.sessions {
		if purchases[sess] == 0 {
			s.rep.Lost++
		}
	}
	for sess, n := range purchases {
		if n > 1 {
			s.rep.Doubled++
		}
		if !s.sessions[sess] {
			s.rep.Unconfirmed++
		}
	}
	recorded := map[string]bool{}
	rows, err = s.db.QueryContext(ctx, `SELECT event_id FROM stripe_events`)
	if err != nil {
		return fmt.Errorf("soak: count events: %w", err)
	}
	if err := scanStrings(rows, func(v string) { recorded[v] = true }); err != nil {
		return err
	}
	for evt := range s.accepted {
		if !recorded[evt] {
			s.rep.EventsMissing++
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dlq, err := s.nc.js.Stream(qctx, streams.DLQStream)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.DLQStream, err)
	}
	info, err := dlq.Info(qctx)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.DLQStream, err)
	}
	s.rep.DeadLetters = info.State.Msgs
	ev, err := s.nc.js.Stream(qctx, streams.EventsStream)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.EventsStream, err)
	}
	evInfo, err := ev.Info(qctx)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.EventsStream, err)
	}
	s.rep.DedupWindow = evInfo.Config.Duplicates
	return nil
}

func scanStrings(rows *sql.Rows, f func(string)) error {
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		f(v)
	}
	return rows.Err()
}

// usage samples every component: the processes from /proc and their
// /metrics (the broker's goroutines from its profiling port), and this
// process, which holds the load senders and every accepted id.
func (s *soak) usage(ctx context.Context) (map[string]Usage, error) {
	out := map[string]Usage{}
	for _, p := range append([]*process{s.edge, s.broker}, s.procs...) {
		u, err := p.usage(ctx)
		if err != nil {
			return nil, fmt.Errorf("soak: usage of %s: %w", p.name, err)
		}
		out[p.name] = u
	}
	b := out["broker"]
	for _, name := range []string{streams.EventsStream, streams.DLQStream, streams.PurchasesStream} {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := s.nc.js.Stream(qctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(qctx)
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("soak: stream %s: %w", name, err)
		}
		b.StoredMsgs += info.State.Msgs
		b.StoredBytes += info.State.Bytes
	}
	out["broker"] = b
	rss, err := vmRSS("self")
	if err != nil {
		return nil, err
	}
	out[loadToolName] = Usage{RSS: rss, Goroutines: runtime.NumGoroutine()}
	return out, nil
}

const loadToolName = "load tool (this)"

func (s *soak) restarts() map[string]int {
	r := map[string]int{}
	for _, p := range append([]*process{s.edge, s.broker}, s.procs...) {
		r[p.name] = p.starts - 1
	}
	return r
}

func pairUsage(start, end map[string]Usage, restarts map[string]int) []ComponentUsage {
	var out []ComponentUsage
	names := []string{"edge"}
	for i := 1; ; i++ {
		n := fmt.Sprintf("processor-%d", i)
		if _, ok := start[n]; !ok {
			break
		}
		names = append(names, n)
	}
	names = append(names, "broker", loadToolName)
	for _, n := range names {
		c := ComponentUsage{Name: n, Start: start[n], End: end[n], Restarts: restarts[n]}
		switch n {
		case "broker":
			c.Note = "nats-server process, file store kept across restarts"
		case loadToolName:
			c.Unjudged, c.Note = true, "holds every accepted id"
		}
		out = append(out, c)
	}
	return out
}

// Reissue copies body (an event from Next) under a fresh event id: the same
// checkout session delivered as a second event, as Stripe does when an event
// is re-created. It returns the new body and event id.
func (p *Payloads) Reissue(body []byte) ([]byte, string) {
	out := append([]byte(nil), body...)
	id := p.run + fmt.Sprintf("%016d", p.n.Add(1))
	copy(out[p.offEvt[0]:], id)
	return out, "evt_" + id
}

// Kinds of process the soak runs.
const (
	kindEdge = iota
	kindProcessor
	kindBroker
)

// process is one binary started by the soak: the edge, a processor or the
// broker.
type process struct {
	name, bin, logDir string
	kind              int
	env               map[string]string
	args              []string // the broker's flags
	secret            string   // the edge's signing secret

	cmd       *exec.Cmd
	waited    chan struct{}
	addr      string // EDGE_ADDR (edge only)
	adminAddr string // paystream's ADMIN_ADDR; the broker's monitoring port
	profAddr  string // the broker's profiling port (goroutines)
	starts    int
}

func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// start runs the binary on fresh loopback ports and waits for /readyz.
func (p *process) start(ctx context.Context) error {
	admin, err := freePort()
	if err != nil {
		return err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ADMIN_ADDR=127.0.0.1:" + strconv.Itoa(admin)}
	p.adminAddr = "127.0.0.1:" + strconv.Itoa(admin)
	args := p.args
	readyURL := "http://" + p.adminAddr + "/readyz"
	if p.kind == kindBroker {
		prof, err := freePort()
		if err != nil {
			return err
		}
		p.profAddr = "127.0.0.1:" + strconv.Itoa(prof)
		args = append(slices.Clone(args), "-m", strconv.Itoa(admin), "--profile", strconv.Itoa(prof))
		readyURL = "http://" + p.adminAddr + "/healthz?js-enabled-only=true"
	}
	if p.kind == kindEdge {
		pub, err := freePort()
		if err != nil {
			return err
		}
		p.addr = "127.0.0.1:" + strconv.Itoa(pub)
		env = append(env, "EDGE_ADDR="+p.addr)
	}
	for k, v := range p.env {
		env = append(env, k+"="+v)
	}
	logf, err := os.OpenFile(filepath.Join(p.logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The processes die with the soak, whatever happens to it.
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("soak: start %s: %w", p.name, err)
	}
	p.cmd, p.waited = cmd, make(chan struct{})
	p.starts++
	go func() { _ = cmd.Wait(); logf.Close(); close(p.waited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(ctx, readyURL) {
			return nil
		}
		select {
		case <-p.waited:
			return fmt.Errorf("soak: %s exited during start-up; see %s", p.name, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: %s not ready after 60s; see %s", p.name, logf.Name())
		}
	}
}

func ready(ctx context.Context, target string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill SIGKILLs the process and reaps it.
func (p *process) kill() error {
	if p.cmd == nil {
		return errors.New("not running")
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.waited
	return nil
}

// stop asks the process to shut down (SIGTERM) and kills it after 15s.
func (p *process) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.waited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.waited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
	}
}

// usage reads VmRSS from /proc, and go_goroutines from paystream's admin
// /metrics or the total of the broker's goroutine profile.
func (p *process) usage(ctx context.Context) (Usage, error) {
	rss, err := vmRSS(strconv.Itoa(p.pid()))
	if err != nil {
		return Usage{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	target, metric := "http://"+p.adminAddr+"/metrics", "go_goroutines "
	if p.kind == kindBroker {
		target, metric = "http://"+p.profAddr+"/debug/pprof/goroutine?debug=1", "goroutine profile: total "
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Usage{}, err
	}
	defer resp.Body.Close()
	g, err := metricValue(resp.Body, metric)
	if err != nil {
		return Usage{}, err
	}
	return Usage{RSS: rss, Goroutines: int(g)}, nil
}

// metricValue returns the number after prefix on the first line that starts
// with it: an unlabelled metric of a Prometheus text exposition ("name "), or
// the total of a goroutine profile.
func metricValue(r io.Reader, prefix string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no line starts with %q", prefix)
}

// vmRSS reads a process's resident set size from /proc/<pid>/status.
func vmRSS(pid string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
}

// loadAvg is the first three fields of /proc/loadavg ("" off Linux).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
