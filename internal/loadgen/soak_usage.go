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
