package config

import (
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/streams"
)

// DefaultProcessorAdminAddr is the processor's /metrics, /healthz, /readyz listener.
const DefaultProcessorAdminAddr = ":9091"

// Processor holds the processor's settings. The consumer defaults and the
// reasons behind them live on streams.DefaultConsumerConfig.
type Processor struct {
	Common
	AdminAddr       string                 // ADMIN_ADDR
	Consumer        streams.ConsumerConfig // PROCESSOR_ACK_WAIT, _MAX_ACK_PENDING, _MAX_DELIVER, _BACKOFF
	Workers         int                    // PROCESSOR_WORKERS; default DB_MAX_CONNS
	HandleTimeout   time.Duration          // PROCESSOR_HANDLE_TIMEOUT
	ShutdownTimeout time.Duration          // PROCESSOR_SHUTDOWN_TIMEOUT
	DBMaxConns      int                    // DB_MAX_CONNS
	// BatchSize is PROCESSOR_BATCH_SIZE: the most events a worker applies in
	// one transaction (only events already waiting; 1 = one per transaction).
	BatchSize int
	// BatchWait is PROCESSOR_BATCH_WAIT: how long a worker may wait to fill
	// a batch, only while the consumer has a backlog; 0 never waits.
	BatchWait time.Duration
	// PartialBatches is PROCESSOR_PARTIAL_BATCHES: how many batches smaller
	// than the batch size may be in handling at once per instance.
	PartialBatches int
}

// ParseProcessor reads and validates the processor's environment. The error
// names every bad variable. The defaults and rules are the processor's
// (processor.Config) and the consumer's (streams.ConsumerConfig); this only
// maps variables onto them.
func ParseProcessor(getenv Getenv) (Processor, error) {
	p := NewParser(getenv)
	def := streams.DefaultConsumerConfig()
	c := Processor{
		Common:     ParseCommon(p),
		AdminAddr:  p.Addr("ADMIN_ADDR", DefaultProcessorAdminAddr),
		DBMaxConns: p.Int("DB_MAX_CONNS", processor.DefaultWorkers, 1, 1000),
		Consumer: streams.ConsumerConfig{
			AckWait:       p.Duration("PROCESSOR_ACK_WAIT", def.AckWait, time.Second, time.Hour),
			MaxAckPending: p.Int("PROCESSOR_MAX_ACK_PENDING", def.MaxAckPending, 1, 100000),
			MaxDeliver:    p.Int("PROCESSOR_MAX_DELIVER", def.MaxDeliver, 2, 1000),
			Backoff:       p.Durations("PROCESSOR_BACKOFF", def.Backoff),
		},
		HandleTimeout:   p.Duration("PROCESSOR_HANDLE_TIMEOUT", processor.DefaultHandleTimeout, 100*time.Millisecond, time.Hour),
		ShutdownTimeout: p.Duration("PROCESSOR_SHUTDOWN_TIMEOUT", processor.DefaultShutdownTimeout, time.Second, time.Hour),
		BatchSize:       p.Int("PROCESSOR_BATCH_SIZE", processor.DefaultBatchSize, 1, processor.MaxBatchSize),
		BatchWait:       p.Duration("PROCESSOR_BATCH_WAIT", processor.DefaultBatchWait, 0, time.Second),
	}
	c.Workers = p.Int("PROCESSOR_WORKERS", c.DBMaxConns, 1, 1024)
	c.PartialBatches = p.Int("PROCESSOR_PARTIAL_BATCHES", min(processor.DefaultPartialBatches, c.Workers), 1, 1024)
	c.validate(p)
	return c, p.Err()
}

// validate checks the relations between variables.
func (c Processor) validate(p *Parser) {
	if n, most := len(c.Consumer.Backoff), streams.MaxBackoffDelays(c.Consumer.MaxDeliver); n > most {
		p.Fail("PROCESSOR_BACKOFF", fmt.Sprint(c.Consumer.Backoff),
			fmt.Sprintf("has %d delays; PROCESSOR_MAX_DELIVER=%d uses at most %d", n, c.Consumer.MaxDeliver, most))
	}
	if c.Workers > c.DBMaxConns {
		p.Fail("PROCESSOR_WORKERS", fmt.Sprint(c.Workers),
			fmt.Sprintf("must not exceed DB_MAX_CONNS=%d: each worker holds a connection for its transaction", c.DBMaxConns))
	}
	if c.Workers > c.Consumer.MaxAckPending {
		p.Fail("PROCESSOR_WORKERS", fmt.Sprint(c.Workers),
			fmt.Sprintf("must not exceed PROCESSOR_MAX_ACK_PENDING=%d", c.Consumer.MaxAckPending))
	}
	if c.PartialBatches > c.Workers {
		p.Fail("PROCESSOR_PARTIAL_BATCHES", fmt.Sprint(c.PartialBatches),
			fmt.Sprintf("must not exceed PROCESSOR_WORKERS=%d (equal to it turns the limit off)", c.Workers))
	}
	if c.HandleTimeout >= c.ShutdownTimeout {
		p.Fail("PROCESSOR_HANDLE_TIMEOUT", c.HandleTimeout.String(),
			fmt.Sprintf("must be shorter than PROCESSOR_SHUTDOWN_TIMEOUT=%s so an in-flight event can finish during shutdown", c.ShutdownTimeout))
	}
}
