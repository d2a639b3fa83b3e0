package loadgen

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// Usage is one component's resident memory and goroutines at one moment.
type Usage struct {
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines"`
	// The broker only: messages and bytes stored in its streams; the message
	// ids it remembers for deduplication (those stored within each stream's
	// STREAM_DEDUP_WINDOW: every message paystream publishes has a
	// Nats-Msg-Id); and its live heap, read right after a collection it is
	// asked to run.
	StoredMsgs  uint64 `json:"stored_msgs,omitempty"`
	StoredBytes uint64 `json:"stored_bytes,omitempty"`
	DedupIDs    uint64 `json:"dedup_ids,omitempty"`
	HeapLive    uint64 `json:"heap_live_bytes,omitempty"`
}

// ComponentUsage is a component's usage at the start and end of the soak.
type ComponentUsage struct {
	Name     string `json:"name"`
	Start    Usage  `json:"start"`
	End      Usage  `json:"end"`
	Restarts int    `json:"restarts"`           // the end is its latest run, still judged against the first start
	Unjudged bool   `json:"unjudged,omitempty"` // reported only (the load tool itself)
	// ByHeap judges the live heap instead of RSS, with an allowance for the
	// dedup ids remembered at the end beyond those at the start (the
	// broker, see Tolerance.BytesPerID).
	ByHeap bool   `json:"judged_by_heap,omitempty"`
	Note   string `json:"note,omitempty"`
}

// dedupAllowance is the memory the ids remembered at the end beyond those
// at the start account for.
func (u ComponentUsage) dedupAllowance(t Tolerance) uint64 {
	if u.End.DedupIDs <= u.Start.DedupIDs {
		return 0
	}
	return (u.End.DedupIDs - u.Start.DedupIDs) * t.BytesPerID
}

// memLimit is the most memory the component may end with: RSS within the
// ratio or slack of its start (the larger), or for a component judged by
// its heap the live heap within the same, plus the dedup allowance and the
// block caches.
func (u ComponentUsage) memLimit(t Tolerance) uint64 {
	if !u.ByHeap {
		return max(uint64(float64(u.Start.RSS)*(1+t.RSSRatio)), u.Start.RSS+t.RSSSlack)
	}
	start := u.Start.HeapLive
	return max(uint64(float64(start)*(1+t.RSSRatio)), start+t.RSSSlack) + u.dedupAllowance(t) + t.BlockCaches
}

// flat says whether end stays within t of start.
func (u ComponentUsage) flat(t Tolerance) (bool, string) {
	if u.Unjudged {
		return true, ""
	}
	grMax := max(int(float64(u.Start.Goroutines)*(1+t.GoroutineRatio)), u.Start.Goroutines+t.GoroutineSlack)
	var why []string
	switch limit := u.memLimit(t); {
	case u.ByHeap && u.End.HeapLive > limit:
		why = append(why, fmt.Sprintf("live heap %s → %s (limit %s, of which %s for %d more remembered ids)",
			mib(u.Start.HeapLive), mib(u.End.HeapLive), mib(limit), mib(u.dedupAllowance(t)), u.End.DedupIDs-min(u.Start.DedupIDs, u.End.DedupIDs)))
	case !u.ByHeap && u.End.RSS > limit:
		why = append(why, fmt.Sprintf("RSS %s → %s (limit %s)", mib(u.Start.RSS), mib(u.End.RSS), mib(limit)))
	}
	if u.End.Goroutines > grMax {
		why = append(why, fmt.Sprintf("goroutines %d → %d (limit %d)", u.Start.Goroutines, u.End.Goroutines, grMax))
	}
	return len(why) == 0, strings.Join(why, ", ")
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
		ids, err := remembered(ctx, st, info)
		if err != nil {
			return nil, fmt.Errorf("soak: stream %s: %w", name, err)
		}
		b.DedupIDs += ids
	}
	// Two collections: the second also frees the buffers the first moved
	// from the file store's sync.Pools to their victim caches.
	var heap float64
	for range 2 {
		var err error
		if heap, err = scrape(ctx, "http://"+s.broker.profAddr+"/debug/pprof/heap?gc=1&debug=1", "# HeapAlloc = "); err != nil {
			return nil, fmt.Errorf("soak: the broker's heap: %w", err)
		}
	}
	b.HeapLive = uint64(heap)
	out["broker"] = b
	rss, err := vmRSS("self")
	if err != nil {
		return nil, err
	}
	out[loadToolName] = Usage{RSS: rss, Goroutines: runtime.NumGoroutine()}
	return out, nil
}

const loadToolName = "load tool (this)"

// remembered returns how many message ids the broker holds for st's dedup
// window: the messages stored within the window (it rebuilds the same set
// from its store when it restarts), counted by a short-lived consumer that
// starts at the window's beginning.
func remembered(ctx context.Context, st jetstream.Stream, info *jetstream.StreamInfo) (uint64, error) {
	window := info.Config.Duplicates
	if window <= 0 || info.State.Msgs == 0 {
		return 0, nil
	}
	since := time.Now().Add(-window)
	if info.State.FirstTime.After(since) {
		return info.State.Msgs, nil
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := st.CreateConsumer(qctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("count the ids of the dedup window: %w", err)
	}
	ci := c.CachedInfo()
	_ = st.DeleteConsumer(qctx, ci.Name) // else it goes after InactiveThreshold
	return ci.NumPending, nil
}

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
			c.ByHeap = true
			c.Note = "nats-server process, file store kept across restarts; judged by its live heap"
		case loadToolName:
			c.Unjudged, c.Note = true, "holds every accepted id"
		}
		out = append(out, c)
	}
	return out
}

// usage reads VmRSS from /proc, and go_goroutines from paystream's admin
// /metrics or the total of the broker's goroutine profile.
func (p *process) usage(ctx context.Context) (Usage, error) {
	rss, err := vmRSS(strconv.Itoa(p.pid()))
	if err != nil {
		return Usage{}, err
	}
	target, metric := "http://"+p.adminAddr+"/metrics", "go_goroutines "
	if p.kind == kindBroker {
		target, metric = "http://"+p.profAddr+"/debug/pprof/goroutine?debug=1", "goroutine profile: total "
	}
	g, err := scrape(ctx, target, metric)
	if err != nil {
		return Usage{}, err
	}
	return Usage{RSS: rss, Goroutines: int(g)}, nil
}
