package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/subscription"
)

// accessBatchTimeout bounds one statement of the access batcher: the
// checks of a batch share it, so no caller's cancellation cuts it short.
const accessBatchTimeout = 10 * time.Second

// errBatcherClosed answers a check that arrives after Close.
var errBatcherClosed = errors.New("the access checker is closed")

// accessBatcher answers access checks on a fixed number of workers, each
// holding one connection while it runs a statement. A worker takes the
// check that woke it and every check queued behind it (up to limit) and
// answers them with one statement: a lone check runs
// subscription.AccessQuery, several run subscription.AccessBatchQuery, the
// same decision over arrays. Nothing waits to fill a batch: under light load
// every check runs alone as soon as it arrives; under load, the checks that
// queue while the workers' statements run share the next ones, so Postgres
// parses, plans and answers one message for many page views and the round
// trips and context switches per check fall. Each answer reflects the
// database after its request arrived.
type accessBatcher struct {
	one, many *accessStmt
	now       func() time.Time
	limit     int // checks per statement at most
	calls     chan *accessCall
	stop      chan struct{} // closed by Close: the workers drain and return
	stopped   chan struct{} // closed once they have
	stopOnce  sync.Once
	wg        sync.WaitGroup
	sizes     prometheus.Observer
}

// accessCall is one check waiting for its worker.
type accessCall struct {
	ctx  context.Context
	key  subscription.AccessKey
	done chan accessAnswer // buffered: the worker never blocks on a caller
}

type accessAnswer struct {
	acc subscription.Access
	err error
}

// newAccessBatcher answers over one and many (AccessQuery and
// AccessBatchQuery, prepared on first use), each batch at most limit checks;
// start runs its workers.
func newAccessBatcher(one, many *accessStmt, now func() time.Time, limit int, sizes prometheus.Observer) *accessBatcher {
	return &accessBatcher{one: one, many: many, now: now, limit: limit, sizes: sizes,
		calls: make(chan *accessCall, limit), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// start runs n more workers.
func (b *accessBatcher) start(n int) {
	b.wg.Add(n)
	for range n {
		go b.work()
	}
}

// check answers one access check, or ctx's error when the caller gives up
// first.
func (b *accessBatcher) check(ctx context.Context, key subscription.AccessKey) (subscription.Access, error) {
	c := &accessCall{ctx: ctx, key: key, done: make(chan accessAnswer, 1)}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return subscription.Access{}, ctx.Err()
	case <-b.stop:
		return subscription.Access{}, errBatcherClosed
	}
	select {
	case a := <-c.done:
		return a.acc, a.err
	case <-ctx.Done():
		return subscription.Access{}, ctx.Err()
	case <-b.stopped: // queued after the workers' last look
		return subscription.Access{}, errBatcherClosed
	}
}

// work runs batches until Close, then answers what is still queued.
func (b *accessBatcher) work() {
	defer b.wg.Done()
	batch := make([]*accessCall, 0, b.limit)
	keys := make([]subscription.AccessKey, 0, b.limit)
	for {
		select {
		case c := <-b.calls:
			batch = append(batch[:0], c)
		case <-b.stop:
			for {
				select {
				case c := <-b.calls:
					c.done <- accessAnswer{err: errBatcherClosed}
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < b.limit {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		// A caller that gave up while queued is not asked for.
		live := batch[:0]
		keys = keys[:0]
		for _, c := range batch {
			if c.ctx.Err() == nil {
				live = append(live, c)
				keys = append(keys, c.key)
			}
		}
		if len(live) > 0 {
			b.sizes.Observe(float64(len(live)))
			b.answer(live, keys)
		}
		clear(batch) // let the answered calls go
	}
}

// answer runs one statement for calls (keys[i] is calls[i]'s).
func (b *accessBatcher) answer(calls []*accessCall, keys []subscription.AccessKey) {
	ctx, cancel := context.WithTimeout(context.Background(), accessBatchTimeout)
	defer cancel()
	if len(calls) == 1 {
		acc, err := subscription.CheckAccess(ctx, b.one, keys[0].Customer, keys[0].Content, b.now())
		calls[0].done <- accessAnswer{acc: acc, err: err}
		return
	}
	accs, err := subscription.CheckAccessBatch(ctx, b.many, keys, b.now())
	for i, c := range calls {
		if err != nil {
			c.done <- accessAnswer{err: err}
			continue
		}
		c.done <- accessAnswer{acc: accs[i]}
	}
}

// Close stops the workers once their statements end; a check still queued
// or arriving later fails with errBatcherClosed.
func (b *accessBatcher) Close() {
	b.stopOnce.Do(func() {
		close(b.stop)
		b.wg.Wait()
		close(b.stopped)
	})
}
