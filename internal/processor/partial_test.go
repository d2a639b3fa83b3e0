package processor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
)

// partialSetup starts an instance with 4 workers, batches of 8 and 2 partial
// slots, and occupies both slots with lone events whose handling waits for
// gate. It returns the recorder and the gate.
func partialSetup(t *testing.T, wait time.Duration) (*recorder, chan struct{}, *testenv.NATS) {
	t.Helper()
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	gate := make(chan struct{})
	h := newRecorder(func(ev stripeevent.Event, _ int) (handling.Outcome, error) {
		if ev.ID == "evt_gated0" || ev.ID == "evt_gated1" {
			<-gate
		}
		return handling.Applied, nil
	})
	cfg := testConfig()
	cfg.Workers, cfg.BatchSize, cfg.PartialBatches, cfg.partialWait = 4, 8, 2, wait
	cfg.HandleTimeout = 8 * time.Second
	cfg.Consumer.AckWait = 10 * time.Second
	s := start(t, js, h, cfg)
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	testenv.Eventually(t, 10*time.Second, "consuming", func() bool { return s.p.Check(context.Background()) == nil })
	for i := range 2 {
		id := fmt.Sprintf("evt_gated%d", i)
		publish(t, js, id, "checkout.session.completed")
		testenv.Eventually(t, 5*time.Second, id+" in handling", func() bool { return len(h.callsOf(id)) == 1 })
	}
	return h, gate, n
}

func handledAny(h *recorder, ids []string) bool {
	for _, id := range ids {
		if len(h.callsOf(id)) > 0 {
			return true
		}
	}
	return false
}

// TestPartialBatchesGatherWhileSlotsAreBusy: with both partial slots taken
// by slow lone events, events that arrive are not spread over the two idle
// workers one transaction each; they wait, gathered, and go as one batch
// when a slot frees.
func TestPartialBatchesGatherWhileSlotsAreBusy(t *testing.T) {
	h, gate, n := partialSetup(t, time.Minute)
	js := n.JetStream(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("evt_more%d", i))
		publish(t, js, ids[i], "checkout.session.completed")
	}
	testenv.Eventually(t, 10*time.Second, "all events delivered to the instance", func() bool {
		return consumerInfo(t, js).NumAckPending == 7
	})
	time.Sleep(300 * time.Millisecond) // two workers are idle: without the limit they would have taken some
	if handledAny(h, ids) {
		t.Fatalf("events were handled while both partial slots were busy; batches %v", h.batchSizes())
	}
	close(gate)
	testenv.Eventually(t, 10*time.Second, "all events settled", func() bool { return settled(t, js) })
	for _, id := range ids {
		if c := len(h.callsOf(id)); c != 1 {
			t.Errorf("%s handled %d times, want once", id, c)
		}
	}
	if b := h.batchSizes(); !slices.Equal(b, []int{5}) {
		t.Errorf("batches = %v, want the 5 waiting events in one batch", b)
	}
}

// TestFullBatchesDoNotWaitForAPartialSlot: a batch that is full needs no
// slot, so a backlog is worked off at full concurrency even while partial
// batches are slow.
func TestFullBatchesDoNotWaitForAPartialSlot(t *testing.T) {
	h, _, n := partialSetup(t, time.Minute)
	js := n.JetStream(t)
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("evt_full%d", i))
	}
	for _, id := range ids {
		publish(t, js, id, "checkout.session.completed")
	}
	testenv.Eventually(t, 10*time.Second, "the full batch applied while the gated events still run", func() bool {
		events, _ := h.appliedCount()
		return events == 8
	})
	if b := h.batchSizes(); !slices.Equal(b, []int{8}) {
		t.Errorf("batches = %v, want one full batch of 8", b)
	}
}

// TestPartialWaitIsBounded: a partial batch that finds no free slot goes
// anyway after the wait, so a stuck transaction delays events, never holds
// them until their AckWait runs out.
func TestPartialWaitIsBounded(t *testing.T) {
	h, _, n := partialSetup(t, 200*time.Millisecond)
	js := n.JetStream(t)
	publish(t, js, "evt_late", "checkout.session.completed")
	testenv.Eventually(t, 5*time.Second, "evt_late applied while both slots are still busy", func() bool {
		return len(h.callsOf("evt_late")) == 1
	})
	if c := h.callsOf("evt_late")[0]; c.deliveries != 1 {
		t.Errorf("evt_late delivered %d times, want once", c.deliveries)
	}
}
