package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

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
	fmt.Fprintf(&b, "broker dedup window: %s (the broker keeps every message id of the window in memory, ~%d B of heap each)\n", r.DedupWindow, r.Tolerance.BytesPerID)
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
		if c.ByHeap {
			note += fmt.Sprintf("; dedup ids remembered %d → %d; live heap %s → %s (limit %s)", c.Start.DedupIDs, c.End.DedupIDs,
				mib(c.Start.HeapLive), mib(c.End.HeapLive), mib(c.memLimit(r.Tolerance)))
		}
		fmt.Fprintf(&b, "%-22s %12s %12s %8d %8d  %s\n", c.Name, mib(c.Start.RSS), mib(c.End.RSS),
			c.Start.Goroutines, c.End.Goroutines, note)
	}
	fmt.Fprintf(&b, "tolerance:          %s\n", r.Tolerance)
	if ok, reasons := r.Verdict(); ok {
		b.WriteString("verdict: PASS — every accepted checkout became exactly one purchase, nothing dead-lettered, memory (beyond the broker's dedup ids) and goroutines flat\n")
	} else {
		fmt.Fprintf(&b, "verdict: FAIL — %s\n", strings.Join(reasons, "; "))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
