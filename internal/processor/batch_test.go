package processor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
)

// TestBatchPoisonEventDoesNotFailItsNeighbours holds the only worker on the
// first event until every event is delivered to this instance, so the rest
// are waiting and reach the handler batched; the poison event in its middle is
// dead-lettered, every neighbour is applied and acked once.
func TestBatchPoisonEventDoesNotFailItsNeighbours(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	const n = 10
	gate := make(chan struct{})
	h := newRecorder(func(ev stripeevent.Event, _ int) (handling.Outcome, error) {
		switch ev.ID {
		case "evt_b0":
			<-gate
		case "evt_b5":
			return "", fault.New(fault.Invalid, "metadata_missing", "checkout without metadata")
		}
		return handling.Applied, nil
	})
	for i := range n {
		publish(t, js, fmt.Sprintf("evt_b%d", i), "checkout.session.completed")
	}
	cfg := testConfig()
	cfg.Workers = 1
	cfg.BatchSize = 16
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 10*time.Second, "consuming", func() bool { return s.p.Check(context.Background()) == nil })
	testenv.Eventually(t, 10*time.Second, "all events delivered to the instance", func() bool {
		return consumerInfo(t, js).NumAckPending == n
	})
	close(gate)
	testenv.Eventually(t, 10*time.Second, "all events settled", func() bool { return settled(t, js) && len(dlqMessages(t, js)) == 1 })

	if dl := dlqMessages(t, js)[0]; dl.EventID != "evt_b5" || dl.Reason != "metadata_missing" {
		t.Errorf("dead letter = %s (%s), want evt_b5 (metadata_missing)", dl.EventID, dl.Reason)
	}
	for i := range n {
		id := fmt.Sprintf("evt_b%d", i)
		if calls := len(h.callsOf(id)); calls != 1 {
			t.Errorf("%s handled %d times, want once", id, calls)
		}
	}
	if events, total := h.appliedCount(); events != n-1 || total != n-1 {
		t.Errorf("applied %d events %d times, want %d once each", events, total, n-1)
	}
	h.mu.Lock()
	batches := slices.Clone(h.batches)
	h.mu.Unlock()
	// The events are delivered in stream order: find evt_b5's batch. The
	// gated evt_b0 may have been alone when its worker took it, and a lone
	// message goes through Handle, not HandleBatch: count it first.
	total := 0
	for _, b := range batches {
		total += b
	}
	seen, poisonBatch := n-total, 0
	if seen > 1 {
		t.Errorf("batches = %v: %d events were not batched, want at most the gated first one", batches, seen)
	}
	for _, b := range batches {
		if seen <= 5 && 5 < seen+b {
			poisonBatch = b
		}
		seen += b
	}
	if seen != n || poisonBatch < 2 {
		t.Errorf("batches = %v, want all %d events batched and evt_b5 among neighbours", batches, n)
	}
}

// singleOnly hides recorder's HandleBatch: a plain handling.Handler.
type singleOnly struct{ r *recorder }

func (s singleOnly) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	return s.r.Handle(ctx, ev)
}

// TestHandlerWithoutBatchesGetsOneEventAtATime: batching is the handler's
// choice; a plain Handler is never given more than one event, and BatchSize
// 1 turns batching off for a BatchHandler.
func TestHandlerWithoutBatchesGetsOneEventAtATime(t *testing.T) {
	tests := []struct {
		name  string
		h     func(r *recorder) handling.Handler
		batch int
	}{
		{"plain handler", func(r *recorder) handling.Handler { return singleOnly{r} }, 16},
		{"batch size 1", func(r *recorder) handling.Handler { return r }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := testenv.StartNATS(t).JetStream(t)
			r := newRecorder(nil)
			for i := range 8 {
				publish(t, js, fmt.Sprintf("evt_s%d", i), "checkout.session.completed")
			}
			cfg := testConfig()
			cfg.Workers, cfg.BatchSize = 2, tt.batch
			s := start(t, js, tt.h(r), cfg)
			testenv.Eventually(t, 10*time.Second, "consuming", func() bool { return s.p.Check(context.Background()) == nil })
			testenv.Eventually(t, 10*time.Second, "all events settled", func() bool { return settled(t, js) })
			if events, total := r.appliedCount(); events != 8 || total != 8 {
				t.Errorf("applied %d events %d times, want 8 once each", events, total)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.batches) != 0 {
				t.Errorf("HandleBatch called with %v", r.batches)
			}
			if got := s.p.batchSize(); got != 1 {
				t.Errorf("effective batch size = %d, want 1", got)
			}
		})
	}
}
