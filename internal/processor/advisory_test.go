package processor

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// streamMsgs is the number of messages stored on stream name.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// Every processor is gone when an event's last delivery runs out: the
// broker's MAX_DELIVERIES advisory is kept on STRIPE_ADVISORIES, and the next
// instance to start makes the dead-letter copy and removes the advisory.
func TestAdvisoryWithNoProcessorRunningIsDeadLetteredByTheNextOne(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.Consumer.AckWait = 300 * time.Millisecond
	cfg.Consumer.MaxDeliver = 2
	cfg.Consumer.Backoff = []time.Duration{50 * time.Millisecond}
	cons, err := streams.EnsureConsumer(ctx, js, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	seq := publish(t, js, "evt_orphan", "charge.refunded")

	// Two instances take the event in turn and die before settling it.
	for delivery := 1; delivery <= 2; delivery++ {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.NumDelivered != uint64(delivery) {
				t.Fatalf("delivery %d has num_delivered %d", delivery, md.NumDelivered)
			}
			n++ // never acked: the instance "crashed"
		}
		if n != 1 {
			t.Fatalf("delivery %d: fetched %d messages (%v)", delivery, n, batch.Error())
		}
	}
	// The broker notices the exhausted event when it next looks for
	// something to deliver (nats-server 2.15 does so at the next pull after
	// the last AckWait ran out): a third instance pulls, gets nothing, and
	// dies too. The advisory is published with no processor listening.
	time.Sleep(cfg.Consumer.AckWait + 100*time.Millisecond)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
		t.Fatal("the exhausted event was delivered a third time")
	}
	testenv.Eventually(t, 10*time.Second, "the advisory stored on STRIPE_ADVISORIES", func() bool {
		return streamMsgs(t, js, streams.AdvisoriesStream) == 1
	})
	if n := len(dlqMessages(t, js)); n != 0 {
		t.Fatalf("%d dead letters before any processor ran", n)
	}

	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) { return handling.Applied, nil })
	start(t, js, h, cfg)
	testenv.Eventually(t, 10*time.Second, "the dead-letter copy", func() bool { return len(dlqMessages(t, js)) == 1 })
	dl := dlqMessages(t, js)[0]
	if dl.Reason != streams.ReasonMaxDeliveries || dl.StreamSeq != seq || dl.EventID != "evt_orphan" || dl.Deliveries != 2 {
		t.Errorf("dead letter = %+v", dl)
	}
	testenv.Eventually(t, 5*time.Second, "the advisory removed once copied", func() bool {
		return streamMsgs(t, js, streams.AdvisoriesStream) == 0
	})
	if calls := h.callsOf("evt_orphan"); len(calls) != 0 {
		t.Errorf("the exhausted event reached the handler %d times", len(calls))
	}
}
