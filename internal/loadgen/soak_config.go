package loadgen

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

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
//
// The broker is judged by its live heap, plus BytesPerID for every message
// id its dedup window remembers at the end beyond those at the start (with
// STREAM_DEDUP_WINDOW longer than the soak it remembers every message of
// the run, by design: streams.DefaultConfig) and BlockCaches. Its RSS is not judged: it
// follows the heap goal (twice the live heap at GOGC=100) and the pages the
// runtime has not returned yet, neither of which is a leak.
type Tolerance struct {
	RSSRatio       float64 // default 0.5 (+50 %); for the broker, of its live heap
	RSSSlack       uint64  // default 24 MiB; for the broker, of its live heap
	GoroutineRatio float64 // default 0.25
	GoroutineSlack int     // default 20
	// BytesPerID is the broker's live heap per remembered message id;
	// default DedupBytesPerID.
	BytesPerID uint64
	// BlockCaches is the broker's heap its file store may hold in block
	// caches at the end and not at the start; default DefaultBlockCaches.
	BlockCaches uint64
	// SettleAfterLoad is the idle time before each usage sample, so both are
	// taken at rest; default 21s: the edge's server (fasthttp) keeps a
	// goroutine per connection it served for up to twice its 10 s idle
	// worker duration, and a shorter wait counts the load's connections as
	// grown goroutines.
	SettleAfterLoad time.Duration
}

// DefaultSettle is Tolerance.SettleAfterLoad's default.
const DefaultSettle = 21 * time.Second

// DefaultBlockCaches is the heap nats-server's file store keeps in block
// caches: the buffer of a stream's last block (8 MiB for paystream's
// streams, from its pool of 8 MiB buffers) stays while a consumer polls the
// stream, after the load too: three of them, 24 MiB, in a soak broker's heap
// profile 20 s after the load. Four streams (STRIPE_EVENTS, STRIPE_DLQ,
// PURCHASES, STRIPE_ADVISORIES) can hold one each.
const DefaultBlockCaches = 4 * 8 << 20

// DedupBytesPerID is what nats-server's live heap holds per message id of a
// dedup window: BenchmarkDedupMemoryPerID (streams) measures 107–109 B for a
// Stripe event id (28 characters), the same with a 2-byte or a 2.5 KiB
// payload: a 32-byte entry (id, sequence, timestamp), the id's bytes, its
// slot in the map and in the expiry array. PURCHASES' ids (outbox uuids, 36
// characters) take 16 B more; 128 covers both.
const DedupBytesPerID = 128

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
	if t.BytesPerID == 0 {
		t.BytesPerID = DedupBytesPerID
	}
	if t.BlockCaches == 0 {
		t.BlockCaches = DefaultBlockCaches
	}
	if t.SettleAfterLoad == 0 {
		t.SettleAfterLoad = DefaultSettle
	}
}

// String states the tolerance for the report.
func (t Tolerance) String() string {
	return fmt.Sprintf("end ≤ start × %.2f or start + %d MiB RSS (the larger; the broker: its live heap, + %d B per id remembered beyond the start's + %d MiB of block caches); goroutines end ≤ start × %.2f or start + %d",
		1+t.RSSRatio, t.RSSSlack>>20, t.BytesPerID, t.BlockCaches>>20, 1+t.GoroutineRatio, t.GoroutineSlack)
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
