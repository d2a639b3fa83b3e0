package loadgen

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
)

// CommitClock records, for every event a handler applied, the time from the
// edge's receipt (Paystream-Received-At) to the moment the handler returned
// after its transaction committed: the end-to-end latency of the issue,
// measured where it ends rather than estimated from stripe_events columns.
type CommitClock struct {
	mu    sync.Mutex
	on    bool
	lats  []time.Duration
	waits []time.Duration // receipt → the handler call that applied it began
	calls int             // handler calls that applied at least one event
	now   func() time.Time
}

// NewCommitClock returns a stopped clock; Start begins recording.
func NewCommitClock() *CommitClock { return &CommitClock{now: time.Now} }

// Start discards what was recorded and begins recording.
func (c *CommitClock) Start() {
	c.mu.Lock()
	c.on, c.lats, c.waits, c.calls = true, c.lats[:0], c.waits[:0], 0
	c.mu.Unlock()
}

// Stop ends recording and returns the percentiles of what was recorded.
func (c *CommitClock) Stop() Latency {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	lat, wait := slices.Clone(c.lats), slices.Clone(c.waits)
	slices.Sort(lat)
	slices.Sort(wait)
	n := len(lat)
	if n == 0 {
		return Latency{}
	}
	return Latency{Events: n, P50: lat[n*50/100], P90: lat[n*90/100], P99: lat[n*99/100], Max: lat[n-1], Calls: c.calls,
		StartP50: wait[n*50/100], StartP99: wait[n*99/100]}
}

func (c *CommitClock) observe(began time.Time, evs []stripeevent.Event, res []handling.Result) {
	t := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return
	}
	before := len(c.lats)
	for i, ev := range evs {
		if res[i].Err == nil && res[i].Outcome == handling.Applied && !ev.ReceivedAt.IsZero() {
			c.lats = append(c.lats, t.Sub(ev.ReceivedAt))
			c.waits = append(c.waits, began.Sub(ev.ReceivedAt))
		}
	}
	if len(c.lats) > before {
		c.calls++
	}
}

// Wrap returns h with its applied events timed by c. The result implements
// handling.BatchHandler exactly when h does, so the runtime batches as it
// would without the clock.
func (c *CommitClock) Wrap(h handling.Handler) handling.Handler {
	if bh, ok := h.(handling.BatchHandler); ok {
		return timedBatch{timed{h: h, c: c}, bh}
	}
	return timed{h: h, c: c}
}

type timed struct {
	h handling.Handler
	c *CommitClock
}

func (t timed) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	began := t.c.now()
	out, err := t.h.Handle(ctx, ev)
	t.c.observe(began, []stripeevent.Event{ev}, []handling.Result{{Outcome: out, Err: err}})
	return out, err
}

type timedBatch struct {
	timed
	bh handling.BatchHandler
}

func (t timedBatch) HandleBatch(ctx context.Context, evs []stripeevent.Event) []handling.Result {
	began := t.c.now()
	res := t.bh.HandleBatch(ctx, evs)
	t.c.observe(began, evs, res)
	return res
}

var (
	_ handling.Handler      = timed{}
	_ handling.BatchHandler = timedBatch{}
)
