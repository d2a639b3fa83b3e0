package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// PublishWithin waits at most its timeout, not for ctx, and reuses its
// timers: a timer that fired for one publish must not end a later one early.
func TestPublishWithinTimesOutAndRecovers(t *testing.T) {
	n := testenv.StartNATS(t)
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	p := streams.NewPublisher(js)
	ev := func(i int) stripeevent.Event {
		return stripeevent.Event{ID: fmt.Sprintf("evt_within_%d", i), Type: "charge.refunded", Endpoint: streams.DefaultEndpoint,
			Created: time.Unix(1700000000, 0), ReceivedAt: time.Now(), Payload: []byte(`{}`)}
	}

	// No stream yet: the broker answers "no responders" and the client
	// retries after 250 ms; the 50 ms timeout ends the wait first.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // ignored: only the timeout bounds the wait
	start := time.Now()
	_, err = p.PublishWithin(cancelled, ev(0), 50*time.Millisecond)
	if !errors.Is(err, streams.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish without a stream = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 240*time.Millisecond {
		t.Fatalf("publish without a stream gave up after %s, want about 50ms", d)
	}

	if err := streams.Ensure(t.Context(), js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		res, err := p.PublishWithin(cancelled, ev(i), 10*time.Second)
		if err != nil || res.Duplicate {
			t.Fatalf("publish #%d = %+v, %v", i, res, err)
		}
	}
	res, err := p.PublishWithin(context.Background(), ev(50), 10*time.Second)
	if err != nil || !res.Duplicate {
		t.Fatalf("repeated publish = %+v, %v; want a duplicate", res, err)
	}
}
