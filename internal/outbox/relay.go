package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// Relay defaults (OUTBOX_* variables).
const (
	DefaultPollInterval   = 200 * time.Millisecond
	DefaultBatchSize      = 100
	DefaultPublishTimeout = 5 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
	// DefaultRetention is far beyond the broker's dedup window and a
	// consumer's catch-up horizon; the rows are an audit aid, PURCHASES is
	// the record.
	DefaultRetention     = 7 * 24 * time.Hour
	DefaultPruneInterval = time.Minute
)

// RelayConfig tunes the relay. Zero values take the defaults.
type RelayConfig struct {
	PollInterval   time.Duration    // idle wait between scans; default 200ms
	BatchSize      int              // rows per transaction; default 100
	PublishTimeout time.Duration    // wait for one PubAck; default 5s
	MaxBackoff     time.Duration    // cap of the wait after failures; default 30s
	Retention      time.Duration    // published rows older than this are deleted; default 7 days, negative keeps them forever
	PruneInterval  time.Duration    // how often to delete; default 1m
	Now            func() time.Time // default time.Now
}

func (c *RelayConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = DefaultPruneInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c RelayConfig) validate() error {
	switch {
	case c.PollInterval < 0:
		return fmt.Errorf("outbox relay: poll interval %s is negative", c.PollInterval)
	case c.BatchSize < 0 || c.BatchSize > 10000:
		return fmt.Errorf("outbox relay: batch size %d outside 1–10000", c.BatchSize)
	case c.PublishTimeout < 0:
		return fmt.Errorf("outbox relay: publish timeout %s is negative", c.PublishTimeout)
	case c.MaxBackoff < c.PollInterval:
		return fmt.Errorf("outbox relay: max backoff %s below poll interval %s", c.MaxBackoff, c.PollInterval)
	case c.PruneInterval < 0:
		return fmt.Errorf("outbox relay: prune interval %s is negative", c.PruneInterval)
	}
	return nil
}

// Relay publishes committed outbox rows to PURCHASES, oldest first. Several
// relays (one per processor instance) may run at once: each batch is claimed
// with FOR UPDATE SKIP LOCKED, so a row is published by one relay at a time.
// Order is kept per relay batch; across instances a consumer may see events
// of different purchases interleaved, and must use data.status rather than
// arrival order.
type Relay struct {
	db  *bun.DB
	js  jetstream.JetStream
	cfg RelayConfig
	m   *Metrics
	log *slog.Logger
}

// NewRelay returns a relay over db and js.
func NewRelay(db *bun.DB, js jetstream.JetStream, cfg RelayConfig, m *Metrics, log *slog.Logger) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if db == nil || js == nil || m == nil || log == nil {
		return nil, errors.New("outbox relay: db, jetstream, metrics and logger are required")
	}
	return &Relay{db: db, js: js, cfg: cfg, m: m, log: log.With("component", "outbox_relay")}, nil
}

// Run relays until ctx ends, makes a last bounded pass (see flush), then
// returns nil. Failures (broker or database down) are logged, counted and
// retried with a doubling wait; they never end Run, because the rows wait
// safely in Postgres.
func (r *Relay) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	var lastPrune time.Time
	for {
		more, err := r.RunOnce(ctx)
		r.refreshGauges(ctx)
		if now := r.cfg.Now(); r.cfg.Retention > 0 && now.Sub(lastPrune) >= r.cfg.PruneInterval {
			lastPrune = now
			if _, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox prune failed", "error", err)
			}
		}
		if ctx.Err() != nil {
			r.flush(ctx)
			return nil
		}
		var wait time.Duration
		switch {
		case err != nil:
			backoff = min(max(2*backoff, r.cfg.PollInterval), r.cfg.MaxBackoff)
			wait = backoff
			r.log.Warn("outbox relay failed; backing off", "error", err, "retry_in", wait)
		case more:
			backoff = 0 // a full batch: the next one is probably waiting already
			continue
		default:
			backoff = 0
			wait = r.cfg.PollInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			r.flush(ctx)
			return nil
		case <-t.C:
		}
	}
}

// flush makes one last pass, bounded by PublishTimeout, after ctx ended. The
// processor stops its companions only once it drained, so this publishes the
// rows its last transactions wrote; without it they would wait for the next
// start of some instance (a single-instance deployment would hold them back
// for the whole restart). With the broker down they simply stay for later.
func (r *Relay) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PublishTimeout)
	defer cancel()
	for fctx.Err() == nil {
		more, err := r.RunOnce(fctx)
		if err != nil {
			r.log.Warn("outbox relay: final pass at shutdown failed; the rows wait for the next start", "error", err)
			return
		}
		if !more {
			return
		}
	}
}

// RunOnce publishes one batch in one transaction and reports whether the
// batch was full (more rows are probably waiting). Rows published before a
// failure are marked; the failed row gets attempts+1 and last_error, and the
// rest of the batch waits for the next round so rows keep their order.
func (r *Relay) RunOnce(ctx context.Context) (more bool, err error) {
	var (
		published []model.Outbox
		pubErr    error
	)
	err = r.db.RunInTx(ctx, &sql.TxOptions{}, func(ctx context.Context, tx bun.Tx) error {
		published, pubErr = nil, nil
		var rows []model.Outbox
		err := tx.NewSelect().Model(&rows).
			Where("published_at IS NULL").
			OrderExpr("created_at, id").
			Limit(int64(r.cfg.BatchSize)).
			For("UPDATE SKIP LOCKED").
			Scan(ctx)
		if err != nil {
			return fmt.Errorf("claim outbox rows: %w", err)
		}
		more = len(rows) == r.cfg.BatchSize
		var failed *model.Outbox
		for i := range rows {
			pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
			pctx, span := startPublishSpan(pctx, rows[i])
			msg := Message(rows[i])
			streams.InjectTrace(pctx, msg.Header)
			_, err := streams.PublishMsg(pctx, r.js, msg)
			endPublishSpan(span, err)
			cancel()
			if err != nil {
				pubErr, failed = err, &rows[i]
				break
			}
			published = append(published, rows[i])
		}
		now := r.cfg.Now().UTC()
		if len(published) > 0 {
			ids := make([]uuid.UUID, len(published))
			for i, row := range published {
				ids[i] = row.ID
			}
			_, err := tx.NewUpdate().Model((*model.Outbox)(nil)).
				Set("published_at = ?", now).
				Where("id IN (?)", bun.In(ids)).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("mark %d outbox rows published: %w", len(ids), err)
			}
		}
		if failed != nil {
			_, err := tx.NewUpdate().Model((*model.Outbox)(nil)).
				Set("attempts = attempts + 1").
				Set("last_error = ?", truncate(pubErr.Error(), 1000)).
				Where("id = ?", failed.ID).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("record outbox publish failure: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// Rows published in the rolled-back transaction stay unmarked and
		// are published again; the broker drops them by Nats-Msg-Id.
		return false, fmt.Errorf("outbox relay: %w", err)
	}
	for _, row := range published {
		r.m.published.WithLabelValues(row.Subject).Inc()
	}
	if pubErr != nil {
		r.m.errors.Inc()
		return false, fmt.Errorf("outbox relay: %w", pubErr)
	}
	if len(published) > 0 {
		r.log.Debug("outbox rows published", "count", len(published))
	}
	return more, nil
}

// pruneBatch bounds one DELETE so a large backlog of old rows never holds
// locks for long.
const pruneBatch = 10000

// Prune deletes published rows older than the retention, in batches, and
// returns how many it deleted. Unpublished rows are never deleted.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	if r.cfg.Retention <= 0 {
		return 0, nil
	}
	cutoff := r.cfg.Now().Add(-r.cfg.Retention).UTC()
	var total int64
	for {
		res, err := r.db.NewDelete().Model((*model.Outbox)(nil)).
			Where("id IN (?)", r.db.NewSelect().Model((*model.Outbox)(nil)).Column("id").
				Where("published_at IS NOT NULL").Where("published_at < ?", cutoff).Limit(pruneBatch)).
			Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("prune outbox rows published before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune outbox: %w", err)
		}
		total += n
		r.m.pruned.Add(float64(n))
		if n < pruneBatch {
			return total, nil
		}
	}
}

// refreshGauges sets the backlog and oldest-age gauges. A failure leaves the
// previous values; the relay's own error is logged already.
func (r *Relay) refreshGauges(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	st, err := ReadBacklog(ctx, r.db)
	if err != nil {
		return
	}
	r.m.backlog.Set(float64(st.Rows))
	age := 0.0
	if st.Oldest != nil {
		age = max(r.cfg.Now().Sub(*st.Oldest).Seconds(), 0)
	}
	r.m.oldest.Set(age)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Backlog is what the outbox still has to relay.
type Backlog struct {
	Rows   int64      `bun:"n"`      // unpublished rows
	Oldest *time.Time `bun:"oldest"` // created_at of the oldest; nil when none
}

// ReadBacklog counts the unpublished rows: the relay's gauges and
// `paystream status` read it.
func ReadBacklog(ctx context.Context, idb bun.IDB) (Backlog, error) {
	var b Backlog
	err := idb.NewSelect().Model((*model.Outbox)(nil)).
		ColumnExpr("count(*) AS n, min(created_at) AS oldest").
		Where("published_at IS NULL").
		Scan(ctx, &b)
	if err != nil {
		return Backlog{}, fmt.Errorf("read outbox backlog: %w", err)
	}
	return b, nil
}
