package loadgen_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func spec(size int) loadgen.PayloadSpec {
	return loadgen.PayloadSpec{ContentID: "c", OrganizationID: "o", Amount: 2999, Currency: "usd", Size: size}
}

func TestPayloadsAreUniqueValidAndSigned(t *testing.T) {
	p, err := loadgen.NewPayloads(spec(0))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sessions := map[string]bool{}
	customers := map[string]bool{}
	var buf []byte
	for i := 0; i < 100; i++ {
		var id string
		var ids loadgen.IDs
		buf, ids = p.Next(buf)
		id = ids.Event
		ev, err := webhook.ConstructEventWithOptions(buf, loadgen.Sign(buf, "whsec_x", time.Now()), "whsec_x",
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			t.Fatalf("event %d does not verify: %v", i, err)
		}
		var s stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
			t.Fatal(err)
		}
		if cus := s.Metadata["customerId"]; customers[cus] || !strings.HasPrefix(cus, "user_") {
			t.Fatalf("event %d: customer %q repeated or malformed", i, cus)
		} else {
			customers[cus] = true
		}
		if ev.ID != id || seen[id] || sessions[s.ID] || s.AmountTotal != 2999 || s.Metadata["amountPaidCents"] != "2999" {
			t.Fatalf("event %d: id %s (returned %s) session %s amount %d", i, ev.ID, id, s.ID, s.AmountTotal)
		}
		seen[id], sessions[s.ID] = true, true
	}
}

func TestPayloadSizePadding(t *testing.T) {
	p, err := loadgen.NewPayloads(spec(8000))
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() < 7500 || p.Len() > 9000 {
		t.Fatalf("padded event is %d bytes, want about 8000", p.Len())
	}
}

func TestBaselinePublishesUniqueEvents(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	p, err := loadgen.NewPayloads(spec(0))
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.RunBaseline(context.Background(), js, loadgen.EdgeConfig{Concurrency: 4, Duration: 300 * time.Millisecond}, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.P50 <= 0 || res.Max < res.P99 {
		t.Fatalf("result = %+v", res)
	}
	s, err := js.Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Publishes cut off by the end of the run may still land (at most one
	// per worker) but are not counted.
	if got := info.State.Msgs; got < uint64(res.Requests) || got > uint64(res.Requests+4) {
		t.Fatalf("stream holds %d messages, baseline counted %d", got, res.Requests)
	}
}

func TestCommitClockTimesAppliedEventsOnly(t *testing.T) {
	c := loadgen.NewCommitClock()
	h := c.Wrap(handling.HandlerFunc(func(_ context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		if ev.ID == "evt_dup" {
			return handling.Duplicate, nil
		}
		return handling.Applied, nil
	}))
	received := time.Now().Add(-20 * time.Millisecond)
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_before", ReceivedAt: received}) // not started: ignored
	c.Start()
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_1", ReceivedAt: received})
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_dup", ReceivedAt: received})
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_no_receipt"})
	lat := c.Stop()
	if lat.Events != 1 || lat.P50 < 20*time.Millisecond || lat.Max != lat.P50 || lat.StartP50 < 20*time.Millisecond || lat.StartP50 > lat.P50 {
		t.Fatalf("latency = %+v, want one event of at least 20ms", lat)
	}
	if _, ok := h.(handling.BatchHandler); ok {
		t.Fatal("a plain handler must not become a batch handler")
	}
}

// batchApplier applies every event but evt_dup, one result each.
type batchApplier struct{ handling.HandlerFunc }

func (b batchApplier) HandleBatch(ctx context.Context, evs []stripeevent.Event) []handling.Result {
	res := make([]handling.Result, len(evs))
	for i, ev := range evs {
		res[i].Outcome, res[i].Err = b.Handle(ctx, ev)
	}
	return res
}

func TestCommitClockCountsTransactions(t *testing.T) {
	c := loadgen.NewCommitClock()
	h := c.Wrap(batchApplier{func(_ context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		if ev.ID == "evt_dup" {
			return handling.Duplicate, nil
		}
		return handling.Applied, nil
	}})
	bh, ok := h.(handling.BatchHandler)
	if !ok {
		t.Fatal("a batch handler must stay one")
	}
	now := time.Now()
	c.Start()
	bh.HandleBatch(context.Background(), []stripeevent.Event{{ID: "evt_1", ReceivedAt: now}, {ID: "evt_2", ReceivedAt: now}, {ID: "evt_dup", ReceivedAt: now}})
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_3", ReceivedAt: now})
	_, _ = h.Handle(context.Background(), stripeevent.Event{ID: "evt_dup", ReceivedAt: now}) // applied nothing: not counted
	lat := c.Stop()
	if lat.Events != 3 || lat.Calls != 2 {
		t.Fatalf("latency = %+v, want 3 events in 2 transactions", lat)
	}
}
