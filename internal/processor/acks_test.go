package processor

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
)

// An event committed while the broker was down has its ack sent again once
// the broker is back: its place in MaxAckPending is free at once, and it is
// not redelivered after AckWait. (Before, the ack was dropped and the event
// held its place for AckWait; after a broker restart under load, that was
// most of the group's window for half a minute.)
func TestLostAckIsSentAgainOnceTheBrokerIsBack(t *testing.T) {
	n := testenv.StartNATS(t)
	pjs := processorJetStream(t, n)
	release := make(chan struct{})
	h := newRecorder(func(ev stripeevent.Event, call int) (handling.Outcome, error) {
		if call == 1 {
			<-release // commit while the broker is down
		}
		return handling.Applied, nil
	})
	cfg := testConfig()
	cfg.Consumer.AckWait = 20 * time.Second // no redelivery within the test
	cfg.HandleTimeout = 15 * time.Second
	cfg.AckTimeout = 500 * time.Millisecond
	s := start(t, pjs, h, cfg)
	publish(t, connect(t, n), "evt_lost_ack", "charge.refunded")
	testenv.Eventually(t, 5*time.Second, "handler running", func() bool { return len(h.callsOf("evt_lost_ack")) == 1 })

	n.Shutdown()
	close(release)
	testenv.Eventually(t, 5*time.Second, "the ack failed", func() bool { return value(t, s.m.ackErrors.WithLabelValues("ack")) >= 1 })
	n.Start()
	testenv.Eventually(t, 10*time.Second, "the ack sent again", func() bool { return value(t, s.m.acksResent) == 1 })
	pub := connect(t, n)
	testenv.Eventually(t, 5*time.Second, "nothing pending on the consumer", func() bool {
		info := consumerInfo(t, pub)
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if info := consumerInfo(t, pub); info.NumRedelivered != 0 {
		t.Errorf("consumer: %d redelivered, want none", info.NumRedelivered)
	}
	if calls := len(h.callsOf("evt_lost_ack")); calls != 1 {
		t.Errorf("handler called %d times, want once", calls)
	}
}

// lostAcks keeps at most its limit, dropping the oldest.
func TestLostAcksKeepTheNewest(t *testing.T) {
	l := newLostAcks(2)
	until := time.Now()
	for _, id := range []string{"a", "b", "c"} {
		l.add(fakeMsg{id: id}, until, nil)
	}
	got := l.take()
	if len(got) != 2 || got[0].msg.(fakeMsg).id != "b" || got[1].msg.(fakeMsg).id != "c" {
		t.Errorf("kept %v, want b and c", got)
	}
	if len(l.take()) != 0 {
		t.Error("take left acks behind")
	}
}

// fakeMsg is a message no method of which is called.
type fakeMsg struct {
	jetstream.Msg
	id string
}
