package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// An event Stripe sends again after the broker's dedup window has passed is
// stored again, and the processor recognises its id in stripe_events and
// acks it with no effect: no second purchase, access row, outbox row or
// purchases.completed. This is what a short STREAM_DEDUP_WINDOW costs. The
// window here is cut to one second; the re-sent event is handled once alone
// (a batch of one: the per-event path) and once in a batch with new
// checkouts (the set-based path, whose claim of the old id fails and whose
// batch is applied again without it).
func TestEventResentAfterTheDedupWindowIsAckedWithoutEffects(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	p1 := s.startProcessor(procOpts{workers: 1})
	// After the edge and the processor ensured the streams (with the default
	// window), as an operator's STREAM_DEDUP_WINDOW=1s would.
	cfg := streams.DefaultConfig()
	cfg.DedupWindow = time.Second
	if err := streams.Ensure(ctx, s.js, cfg); err != nil {
		t.Fatal(err)
	}
	const session, eventID = "cs_after_window", "evt_after_window"
	body := s.checkout(typeCompleted, eventID, session, time.Now().Add(-time.Minute), nil)
	stored := func() uint64 {
		return s.subjectCounts(streams.EventsStream, "stripe.events.>")["stripe.events.default."+typeCompleted]
	}

	s.mustPost(body)
	s.mustPost(body) // within the window: the broker drops it
	s.waitSettled(20 * time.Second)
	if n := stored(); n != 1 {
		t.Fatalf("STRIPE_EVENTS holds %d messages after two posts within the window, want 1", n)
	}
	s.assertOnePurchase(session, 1)

	s.run(t, "alone", func(t *testing.T) {
		time.Sleep(1500 * time.Millisecond) // the window passes
		dupBefore := s.metric(eventsTotal, events(typeCompleted, "duplicate"))
		s.mustPost(body)
		s.waitSettled(20 * time.Second)
		if n := stored(); n != 2 {
			t.Fatalf("STRIPE_EVENTS holds %d messages, want 2 (the re-send is past the window)", n)
		}
		if d := s.metric(eventsTotal, events(typeCompleted, "duplicate")) - dupBefore; d != 1 {
			t.Errorf("duplicates counted %v, want 1", d)
		}
		s.assertOnePurchase(session, 1)
	})

	s.run(t, "in a batch with new checkouts", func(t *testing.T) {
		// Everything is pending before the next instance starts, so its one
		// worker takes the re-send and the new checkouts in one batch.
		if err := p1.stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		news := []string{"cs_after_window_a", "cs_after_window_b", "cs_after_window_c"}
		s.mustPost(s.checkout(typeCompleted, "evt_after_window_a", news[0], time.Now(), nil))
		s.mustPost(body)
		for i, cs := range news[1:] {
			s.mustPost(s.checkout(typeCompleted, "evt_after_window_"+string(rune('b'+i)), cs, time.Now(), nil))
		}
		if n := stored(); n != 3+uint64(len(news)) {
			t.Fatalf("STRIPE_EVENTS holds %d messages, want %d", n, 3+len(news))
		}
		p2 := s.startProcessor(procOpts{workers: 1})
		s.waitSettled(20 * time.Second)
		if got := metricOf(t, p2.reg, eventsTotal, events(typeCompleted, "duplicate")); got != 1 {
			t.Errorf("the new instance counted %v duplicates, want 1", got)
		}
		if got := metricOf(t, p2.reg, eventsTotal, events(typeCompleted, "applied")); got != float64(len(news)) {
			t.Errorf("the new instance applied %v events, want %d", got, len(news))
		}
		if mean := meanBatch(t, p2); mean <= 1 {
			t.Errorf("the new instance's batches held %v events on average; the set-based path needs one of two or more", mean)
		}
		s.assertOnePurchase(session, 1)
		for _, cs := range news {
			s.assertOnePurchase(cs, 1)
		}
		var ev model.StripeEvent
		if err := s.db.NewSelect().Model(&ev).Where("event_id = ?", eventID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if ev.Outcome != model.EventApplied {
			t.Errorf("%s outcome = %q, want the first delivery's %q", eventID, ev.Outcome, model.EventApplied)
		}
		if dl := s.dlq(); len(dl) != 0 {
			t.Errorf("dead letters: %s", describeLetters(dl))
		}
	})
}

// meanBatch is the mean number of events per batch the instance handed its
// handler (paystream_processor_batch_size): above 1 when at least one batch
// held several events.
func meanBatch(t *testing.T, inst *instance) float64 {
	t.Helper()
	mfs, err := inst.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "paystream_processor_batch_size" {
			for _, m := range mf.GetMetric() {
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					return h.GetSampleSum() / float64(h.GetSampleCount())
				}
			}
		}
	}
	return 0
}
