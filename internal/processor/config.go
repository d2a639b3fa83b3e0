// Package processor is the consumer-group runtime of the processor: it pulls
// Stripe events from the durable consumer on STRIPE_EVENTS, hands each to a
// handling.Handler on a bounded worker pool, and acks, retries with backoff or
// dead-letters it according to one classification of the handler's error. It
// knows nothing of purchases.
package processor

import (
	"errors"
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/envvar"
	"github.com/paystream/paystream/streams"
)

// Config shapes a Processor. Zero fields take the defaults of setDefaults,
// except BatchWait, whose zero is no wait. internal/config/processorconfig
// maps the PROCESSOR_* variables onto it; the rules are Validate's.
type Config struct {
	Consumer        streams.ConsumerConfig // durable consumer settings
	Workers         int                    // concurrent handlers; default DefaultWorkers
	HandleTimeout   time.Duration          // per-delivery handler deadline; default 20s
	ShutdownTimeout time.Duration          // drain budget; default 25s
	PollInterval    time.Duration          // consumer/DLQ gauge refresh; default 5s
	AckTimeout      time.Duration          // wait for an ack/DLQ PubAck; default 5s
	// BatchSize is the most events one worker hands to a
	// handling.BatchHandler at once; default DefaultBatchSize, 1 turns
	// batching off. Only events already waiting are batched.
	BatchSize int
	// BatchWait is how long a worker waits for more events to fill a batch
	// when the consumer has a backlog (the last message's NumPending > 0);
	// never at light load, where a lone event goes at once. 0 never waits
	// (PROCESSOR_BATCH_WAIT=0); the environment's default is
	// DefaultBatchWait.
	BatchWait time.Duration
	// PartialBatches is how many batches smaller than BatchSize may be in
	// handling at once on this instance. While that many run, the next
	// worker keeps collecting the events that arrive until its batch is full
	// or one of them finishes (at most MaxPartialWait), so under load events
	// are applied in fewer, fuller transactions instead of one each; at light
	// load a lone event still goes at once. Default
	// DefaultPartialBatchesFor(Workers); at most Workers, which turns the
	// limit off. Irrelevant when BatchSize is 1.
	PartialBatches int
	partialWait    time.Duration // MaxPartialWait; tests shorten or lengthen it
	// Breaker pauses the instance while the database is down instead of
	// spending the events' delivery budget; off without a Probe.
	Breaker BreakerConfig
	Now     func() time.Time // clock; default time.Now
}

// DefaultBatchWait is PROCESSOR_BATCH_WAIT's default: a few milliseconds,
// small next to a batch's transaction, long enough for the next pull to
// arrive.
const DefaultBatchWait = 2 * time.Millisecond

// DefaultPartialBatches is PROCESSOR_PARTIAL_BATCHES's default. Two keep a
// lone event from waiting behind one slow transaction; more let small
// batches crowd out full ones (measured in docs/benchmarks.md).
const DefaultPartialBatches = 2

// DefaultPartialBatchesFor is PartialBatches's default with workers
// workers: DefaultPartialBatches, or workers when fewer.
func DefaultPartialBatchesFor(workers int) int { return min(DefaultPartialBatches, workers) }

// MaxPartialWait bounds how long a worker holding a partial batch waits for a
// partial slot before it starts anyway: longer than a healthy batch
// transaction, short next to AckWait, so a stuck transaction (the database
// going away) costs the waiting events latency, never a redelivery.
const MaxPartialWait = 100 * time.Millisecond

// DefaultBatchSize is PROCESSOR_BATCH_SIZE's default: the fastest drain
// measured (docs/benchmarks.md: 32 beat 16 and 64 side by side; 64 is capped
// by the consumer's MaxAckPending of 256 over ten workers), and only reached
// under a backlog: at light load a batch is what is waiting.
const DefaultBatchSize = 32

// MaxBatchSize bounds BatchSize: each event of a batch is a subtransaction,
// and Postgres keeps at most 64 subtransaction ids per backend in shared
// memory before other sessions' snapshots get slower.
const MaxBatchSize = 64

// DefaultWorkers matches the default database pool (DB_MAX_CONNS): each
// worker holds one connection for its transaction.
const DefaultWorkers = 10

// MaxWorkers bounds Workers (PROCESSOR_WORKERS).
const MaxWorkers = 1024

// Timeout defaults (PROCESSOR_HANDLE_TIMEOUT, PROCESSOR_SHUTDOWN_TIMEOUT).
const (
	// DefaultHandleTimeout is below the 30s AckWait, so a healthy handler
	// never needs InProgress, and below the shutdown budget, so an
	// in-flight event can finish.
	DefaultHandleTimeout = 20 * time.Second
	// DefaultShutdownTimeout: Kubernetes kills 30s after SIGTERM; keep 5s
	// for nc.Drain and the database.
	DefaultShutdownTimeout = 25 * time.Second
)

func (c *Config) setDefaults() {
	def := streams.DefaultConsumerConfig()
	if c.Consumer.AckWait == 0 {
		c.Consumer.AckWait = def.AckWait
	}
	if c.Consumer.MaxAckPending == 0 {
		c.Consumer.MaxAckPending = def.MaxAckPending
	}
	if c.Consumer.MaxDeliver == 0 {
		c.Consumer.MaxDeliver = def.MaxDeliver
	}
	if c.Consumer.Backoff == nil {
		c.Consumer.Backoff = def.Backoff
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.HandleTimeout == 0 {
		c.HandleTimeout = DefaultHandleTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PartialBatches == 0 {
		c.PartialBatches = DefaultPartialBatchesFor(c.Workers)
	}
	if c.partialWait == 0 {
		c.partialWait = MaxPartialWait
	}
	c.Breaker.setDefaults()
}

// Validate checks c as New would (defaults applied to a copy), so a caller
// can fail before it connects to anything. The error joins every broken
// rule; one that a variable sets names it.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validate()
}

func (c *Config) validate() error {
	var errs []error
	bad := func(name string, value any, reason string) {
		errs = append(errs, envvar.New(name, fmt.Sprint(value), reason))
	}
	if err := c.Consumer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		bad("PROCESSOR_WORKERS", c.Workers, fmt.Sprintf("must be between 1 and %d", MaxWorkers))
	} else if c.Workers > c.Consumer.MaxAckPending && c.Consumer.MaxAckPending > 0 {
		bad("PROCESSOR_WORKERS", c.Workers, fmt.Sprintf("must not exceed PROCESSOR_MAX_ACK_PENDING=%d: the extra workers would never get a message",
			c.Consumer.MaxAckPending))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("PROCESSOR_BATCH_SIZE", c.BatchSize, fmt.Sprintf("must be between 1 and %d", MaxBatchSize))
	}
	if c.BatchWait < 0 {
		bad("PROCESSOR_BATCH_WAIT", c.BatchWait, "must not be negative (0 never waits)")
	}
	if c.PartialBatches < 1 || c.PartialBatches > c.Workers {
		bad("PROCESSOR_PARTIAL_BATCHES", c.PartialBatches,
			fmt.Sprintf("must be between 1 and PROCESSOR_WORKERS=%d (equal to it turns the limit off)", c.Workers))
	}
	if c.HandleTimeout <= 0 {
		bad("PROCESSOR_HANDLE_TIMEOUT", c.HandleTimeout, "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("PROCESSOR_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, "must be positive")
	}
	if c.PollInterval <= 0 || c.AckTimeout <= 0 {
		errs = append(errs, errors.New("processor: PollInterval and AckTimeout must be positive"))
	}
	if err := c.Breaker.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// prefetch is how many messages an instance pulls ahead. Without batching,
// one per worker. With batching, a batch per worker: the messages waiting in
// the queue are what batches are made of. Never more than MaxAckPending, which
// the broker enforces over the whole group anyway.
func (c *Config) prefetch(batch int) int { return min(c.Workers*batch, c.Consumer.MaxAckPending) }

// progressInterval is how often a running handler's message gets InProgress.
// A third of AckWait (not a half) leaves room for the time a message waited in
// the prefetch buffer before a worker took it.
func (c *Config) progressInterval() time.Duration { return c.Consumer.AckWait / 3 }
