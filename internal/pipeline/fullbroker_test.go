package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/paystream/paystream/streams"
)

// setMaxBytes limits stream to its current size (full: the next publish is
// refused) or lifts the limit (-1).
func (s *stack) setMaxBytes(stream string, full bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxBytes = -1
	if full {
		cfg.MaxBytes = max(int64(info.State.Bytes), 1)
	}
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		s.t.Fatalf("set max_bytes of %s: %v", stream, err)
	}
}

// JetStream refuses publishes because a stream is full: the edge answers
// 503 (never 200) for as long as STRIPE_EVENTS has no room, and 200 again
// by itself once it has; while PURCHASES is full the outbox relay keeps the
// rows and retries. Afterwards every session has exactly one purchase and
// one purchases.completed, and nothing was dead-lettered.
func TestFullBrokerRefusesAndRecovers(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	at := time.Now().Add(-time.Minute)
	var sessions []string
	body := func(prefix string, i int) []byte {
		session := fmt.Sprintf("cs_%s_%02d", prefix, i)
		sessions = append(sessions, session)
		id := fmt.Sprintf("evt_%s_%02d", prefix, i)
		return s.checkout(typeCompleted, id, session, at, nil)
	}
	for i := range 3 {
		s.mustPost(body("before", i))
	}
	s.waitSettled(30 * time.Second)

	// PURCHASES full: purchases are applied, their events wait in the outbox.
	s.setMaxBytes(streams.PurchasesStream, true)
	for i := range 3 {
		s.mustPost(body("purchases_full", i))
	}
	eventually(t, 20*time.Second, "the relay to fail on the full PURCHASES and keep the rows", func() bool {
		return s.count("purchases", "TRUE") == 6 &&
			s.count("outbox", "published_at IS NULL AND attempts > 0") >= 1 &&
			s.count("outbox", "published_at IS NULL") == 3
	})

	// STRIPE_EVENTS full too: the edge refuses, Stripe keeps the events.
	s.setMaxBytes(streams.EventsStream, true)
	var refused [][]byte
	for i := range 3 {
		b := body("events_full", i)
		for range 2 {
			if code := s.post(b); code != http.StatusServiceUnavailable {
				t.Fatalf("edge answered %d with STRIPE_EVENTS full, want 503", code)
			}
		}
		refused = append(refused, b)
	}
	if n := scrape(t, s.edgeAd, "paystream_edge_publish_errors_total", map[string]string{"endpoint": streams.DefaultEndpoint}); n < 6 {
		t.Errorf("%v publish errors counted, want at least 6", n)
	}

	// Space returns: Stripe's retries are accepted, the relay catches up.
	s.setMaxBytes(streams.EventsStream, false)
	s.setMaxBytes(streams.PurchasesStream, false)
	for _, b := range refused {
		s.mustPost(b)
	}
	s.waitSettled(30 * time.Second)
	s.assertAppliedOnce(sessions, len(sessions))
}
