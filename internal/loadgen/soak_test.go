package loadgen_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/loadgen"
)

// passing is a report of a soak that held.
func passing() loadgen.SoakReport {
	return loadgen.SoakReport{
		Accepted: 1100, Sessions: 1000, Purchases: 1000,
		Faults: map[string]int{loadgen.FaultPostgres: 1, loadgen.FaultBroker: 1, loadgen.FaultProcessor: 1},
		Components: []loadgen.ComponentUsage{
			{Name: "edge", Start: loadgen.Usage{RSS: 30 << 20, Goroutines: 17}, End: loadgen.Usage{RSS: 40 << 20, Goroutines: 19}},
			{Name: "processor-1", Start: loadgen.Usage{RSS: 100 << 20, Goroutines: 100}, End: loadgen.Usage{RSS: 149 << 20, Goroutines: 125}},
			// The broker of the 10-minute soak at STREAM_DEDUP_WINDOW=2h: it
			// remembers 250 000 more ids at the end, 250 000 × 128 B =
			// 30.5 MiB on top of the 24 MiB slack of its 20 MiB live heap
			// and 32 MiB of block caches (limit 106.5 MiB); its RSS is not
			// judged.
			{Name: "broker", ByHeap: true,
				Start: loadgen.Usage{RSS: 93 << 20, Goroutines: 39, DedupIDs: 68_000, HeapLive: 20 << 20},
				End:   loadgen.Usage{RSS: 205 << 20, Goroutines: 39, DedupIDs: 318_000, HeapLive: 60 << 20}},
			{Name: "load tool (this)", Unjudged: true, Start: loadgen.Usage{RSS: 30 << 20}, End: loadgen.Usage{RSS: 900 << 20}},
		},
		Tolerance: loadgen.Tolerance{RSSRatio: 0.5, RSSSlack: 24 << 20, GoroutineRatio: 0.25, GoroutineSlack: 20,
			BytesPerID: 128, BlockCaches: 32 << 20},
	}
}

func TestSoakVerdict(t *testing.T) {
	tests := []struct {
		name   string
		change func(*loadgen.SoakReport)
		want   string // "" = PASS; else a fragment of the reasons
	}{
		{"held", func(*loadgen.SoakReport) {}, ""},
		{"nothing accepted", func(r *loadgen.SoakReport) { r.Accepted = 0 }, "no event was accepted"},
		{"lost checkout", func(r *loadgen.SoakReport) { r.Lost = 1 }, "1 accepted checkouts have no purchase"},
		{"unrecorded event", func(r *loadgen.SoakReport) { r.EventsMissing = 2 }, "2 accepted events were never recorded"},
		{"doubled", func(r *loadgen.SoakReport) { r.Doubled = 1 }, "more than one purchase"},
		{"dead letter", func(r *loadgen.SoakReport) { r.DeadLetters = 3 }, "3 dead letters"},
		{"backlog", func(r *loadgen.SoakReport) { r.Backlog = 5 }, "not drained: 5 events pending"},
		{"outbox", func(r *loadgen.SoakReport) { r.OutboxPending = 4 }, "4 outbox rows unpublished"},
		{"given up", func(r *loadgen.SoakReport) { r.GivenUp = 1 }, "refused for longer than the retry window"},
		// 30 MiB start: the 24 MiB slack is the larger allowance (54 MiB).
		{"small process within slack", func(r *loadgen.SoakReport) { r.Components[0].End.RSS = 54 << 20 }, ""},
		{"small process beyond slack", func(r *loadgen.SoakReport) { r.Components[0].End.RSS = 55 << 20 }, "edge grew: RSS"},
		// 100 MiB start: +50 % is the larger allowance (150 MiB).
		{"large process beyond ratio", func(r *loadgen.SoakReport) { r.Components[1].End.RSS = 151 << 20 }, "processor-1 grew: RSS"},
		{"goroutines beyond ratio", func(r *loadgen.SoakReport) { r.Components[1].End.Goroutines = 126 }, "goroutines 100 → 126 (limit 125)"},
		{"goroutines beyond slack", func(r *loadgen.SoakReport) { r.Components[0].End.Goroutines = 38 }, "goroutines 17 → 38 (limit 37)"},
		// The broker: its heap may grow by the ids it remembers, no more.
		{"broker heap at the dedup allowance", func(r *loadgen.SoakReport) { r.Components[2].End.HeapLive = 106<<20 + 512<<10 }, ""},
		{"broker heap beyond the dedup allowance", func(r *loadgen.SoakReport) { r.Components[2].End.HeapLive = 107 << 20 },
			"broker grew: live heap 20.0 MiB → 107.0 MiB (limit 106.5 MiB, of which 30.5 MiB for 250000 more remembered ids)"},
		{"broker leak without new ids", func(r *loadgen.SoakReport) {
			r.Components[2].End.DedupIDs = r.Components[2].Start.DedupIDs
			r.Components[2].End.HeapLive = 77 << 20
		}, "broker grew: live heap"},
		{"broker with fewer ids at the end gets no allowance", func(r *loadgen.SoakReport) {
			r.Components[2].End.DedupIDs = 1000
			r.Components[2].End.HeapLive = 77 << 20
		}, "limit 76.0 MiB, of which 0.0 MiB"},
		{"broker RSS is reported, not judged", func(r *loadgen.SoakReport) { r.Components[2].End.RSS = 2 << 30 }, ""},
		{"restarted process still judged", func(r *loadgen.SoakReport) {
			r.Components[1].Restarts = 2
			r.Components[1].End.Goroutines = 200
		}, "processor-1 grew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := passing()
			r.Components = append([]loadgen.ComponentUsage(nil), r.Components...)
			tt.change(&r)
			ok, reasons := r.Verdict()
			var out bytes.Buffer
			if _, err := r.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !ok || !strings.Contains(out.String(), "verdict: PASS") {
					t.Fatalf("want PASS, got %v\n%s", reasons, out.String())
				}
				return
			}
			if ok || !strings.Contains(strings.Join(reasons, "; "), tt.want) {
				t.Fatalf("want FAIL with %q, got ok=%v %v", tt.want, ok, reasons)
			}
			if !strings.Contains(out.String(), "verdict: FAIL — ") || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("output does not state the failure %q:\n%s", tt.want, out.String())
			}
		})
	}
}

func TestSoakReportPrintsEveryCount(t *testing.T) {
	r := passing()
	r.DupRetries, r.DupSessions, r.Requests = 77, 33, 1234
	r.ByStatus = map[string]int{"200": 1200, "503": 34}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"events accepted:    1100 distinct event ids, 1000 checkout sessions",
		"duplicates sent:    77 same event id, 33 same session under a new event id",
		"purchases:          1000  (lost 0, doubled 0",
		"dead letters:       0",
		"pg_terminate_backend=1 broker_restart=1 processor_sigkill=1",
		"processor-1", "100.0 MiB", "149.0 MiB",
		"not judged",
		"dedup ids remembered 68000 → 318000; live heap 20.0 MiB → 60.0 MiB (limit 106.5 MiB)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func TestReissueKeepsTheSessionUnderANewEventID(t *testing.T) {
	p, err := loadgen.NewPayloads(spec(0))
	if err != nil {
		t.Fatal(err)
	}
	body, ids := p.Next(nil)
	orig := append([]byte(nil), body...)
	again, evt := p.Reissue(body)
	if !bytes.Equal(body, orig) {
		t.Fatal("Reissue changed its input")
	}
	if evt == ids.Event || !bytes.Contains(again, []byte(`"`+evt+`"`)) || bytes.Contains(again, []byte(ids.Event)) {
		t.Fatalf("reissued event id %s (original %s) not in place of the original", evt, ids.Event)
	}
	if !bytes.Contains(again, []byte(ids.Session)) || !bytes.Contains(again, []byte(ids.PaymentIntent)) {
		t.Fatal("reissued event lost its checkout session or payment intent")
	}
	var v map[string]any
	if err := json.Unmarshal(again, &v); err != nil {
		t.Fatalf("reissued event is not JSON: %v", err)
	}
}
