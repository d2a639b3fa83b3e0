package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// testConfig keeps every test fast: short ack wait, short backoff.
func testConfig() Config {
	return Config{
		Consumer: streams.ConsumerConfig{
			AckWait: time.Second, MaxAckPending: 64, MaxDeliver: 4,
			Backoff: []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond},
		},
		Workers:         4,
		HandleTimeout:   800 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second, // generous: a loaded CI machine must not turn a graceful stop into a timeout
		PollInterval:    100 * time.Millisecond,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

// recorder is a realistic fake domain handler: per event id it records every
// delivery and answers with the behaviour the test scripted (fail n times,
// fail forever, succeed), like the real handler facing a flaky database.
type recorder struct {
	mu       sync.Mutex
	calls    map[string][]call
	behave   func(ev stripeevent.Event, n int) (handling.Outcome, error) // n: 1-based call count for ev.ID
	applied  map[string]int
	instance map[string]string // event id → instance that applied it
	name     string
	batches  []int // sizes of the HandleBatch calls
}

type call struct {
	at         time.Time
	deliveries uint64
}

func newRecorder(behave func(ev stripeevent.Event, n int) (handling.Outcome, error)) *recorder {
	if behave == nil {
		behave = func(stripeevent.Event, int) (handling.Outcome, error) { return handling.Applied, nil }
	}
	return &recorder{calls: map[string][]call{}, applied: map[string]int{}, instance: map[string]string{}, behave: behave}
}

func (r *recorder) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	r.mu.Lock()
	r.calls[ev.ID] = append(r.calls[ev.ID], call{at: time.Now(), deliveries: ev.Deliveries})
	n := len(r.calls[ev.ID])
	r.mu.Unlock()
	out, err := r.behave(ev, n)
	if err == nil && ctx.Err() == nil {
		r.mu.Lock()
		r.applied[ev.ID]++
		r.mu.Unlock()
	}
	if ctx.Err() != nil {
		return "", ctx.Err() // a real transaction would have rolled back
	}
	return out, err
}

// HandleBatch makes recorder a handling.BatchHandler, so every runtime test
// runs with batching on (the default): it handles each event of the batch
// as Handle does, each with its own result, and records the batch sizes.
func (r *recorder) HandleBatch(ctx context.Context, evs []stripeevent.Event) []handling.Result {
	r.mu.Lock()
	r.batches = append(r.batches, len(evs))
	r.mu.Unlock()
	res := make([]handling.Result, len(evs))
	for i, ev := range evs {
		res[i].Outcome, res[i].Err = r.Handle(ctx, ev)
	}
	return res
}

var _ handling.BatchHandler = (*recorder)(nil)

func (r *recorder) callsOf(id string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls[id]...)
}

func (r *recorder) appliedCount() (events, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.applied {
		events++
		total += n
	}
	return events, total
}

// publish stores a well-formed event, as the edge would.
func publish(t *testing.T, js jetstream.JetStream, id, typ string) uint64 {
	t.Helper()
	ev := stripeevent.Event{ID: id, Type: typ, APIVersion: "2023-10-16", Endpoint: "default", Created: time.Unix(1700000000, 0),
		ReceivedAt: time.Now(), RequestID: "req_" + id,
		Payload: fmt.Appendf(nil, `{"id":%q,"object":"event","type":%q,"data":{"object":{}}}`, id, typ)}
	res, err := streams.NewPublisher(js).Publish(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return res.Sequence
}

// started is a running Processor.
type started struct {
	p      *Processor
	m      *Metrics
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, js jetstream.JetStream, h handling.Handler, cfg Config) *started {
	t.Helper()
	m := NewMetrics(nil)
	p, err := New(js, h, cfg, m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{p: p, m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- p.Run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels Run and returns its result; later calls return nil.
func (s *started) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15s after cancel")
		return nil
	}
}

// connect returns a JetStream context on a new connection without ensuring
// the streams again (see TestInstancesShareTheDurableConsumer).
func connect(t *testing.T, n *testenv.NATS) jetstream.JetStream {
	t.Helper()
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// settled reports whether every stored event was delivered and acked/termed.
func settled(t *testing.T, js jetstream.JetStream) bool {
	info := consumerInfo(t, js)
	return info.NumPending == 0 && info.NumAckPending == 0
}

func dlqMessages(t *testing.T, js jetstream.JetStream) []streams.DeadLetterMsg {
	t.Helper()
	list, err := streams.NewDLQ(js).List(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestSuccessIsAckedOnceAndCounted(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(ev stripeevent.Event, _ int) (handling.Outcome, error) {
		if ev.ID == "evt_dup" {
			return handling.Duplicate, nil
		}
		return handling.Applied, nil
	})
	for i := range 5 {
		publish(t, js, fmt.Sprintf("evt_ok%d", i), "checkout.session.completed")
	}
	publish(t, js, "evt_dup", "charge.refunded")
	s := start(t, js, h, testConfig())
	testenv.Eventually(t, 5*time.Second, "6 events settled", func() bool {
		n, _ := h.appliedCount()
		return n == 6 && settled(t, js)
	})
	// Wait past AckWait: an unacked message would come back by now.
	time.Sleep(1300 * time.Millisecond)
	if events, total := h.appliedCount(); events != 6 || total != 6 {
		t.Fatalf("handled %d events %d times, want 6 once each", events, total)
	}
	if got := value(t, s.m.events.WithLabelValues("checkout.session.completed", "applied")); got != 5 {
		t.Errorf("applied = %v, want 5", got)
	}
	if got := value(t, s.m.events.WithLabelValues("charge.refunded", "duplicate")); got != 1 {
		t.Errorf("duplicate = %v, want 1", got)
	}
	if got := value(t, s.m.endToEnd); got != 6 {
		t.Errorf("end-to-end observations = %v, want 6", got)
	}
	if c := h.callsOf("evt_ok0"); len(c) != 1 || c[0].deliveries != 1 {
		t.Errorf("calls of evt_ok0 = %+v, want one first delivery", c)
	}
	testenv.Eventually(t, 2*time.Second, "gauges polled", func() bool {
		return value(t, s.m.ackPending) == 0 && value(t, s.m.pending) == 0
	})
	if err := s.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after graceful stop", err)
	}
}

func TestTransientErrorIsRetriedWithBackoffThenApplied(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(ev stripeevent.Event, n int) (handling.Outcome, error) {
		if n <= 2 {
			return "", fault.Wrap(errors.New("connection refused"), fault.Unavailable, "db_unavailable", "begin tx")
		}
		return handling.Applied, nil
	})
	cfg := testConfig()
	publish(t, js, "evt_flaky", "checkout.session.completed")
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 5*time.Second, "flaky event applied", func() bool { n, _ := h.appliedCount(); return n == 1 && settled(t, js) })
	calls := h.callsOf("evt_flaky")
	if len(calls) != 3 {
		t.Fatalf("calls = %d, want 3", len(calls))
	}
	for i, c := range calls {
		if c.deliveries != uint64(i+1) {
			t.Errorf("call %d saw delivery %d", i+1, c.deliveries)
		}
	}
	for i := 1; i < len(calls); i++ {
		gap, want := calls[i].at.Sub(calls[i-1].at), cfg.Consumer.Backoff[i-1]
		if gap < want {
			t.Errorf("delivery %d came %s after the previous one, want at least the backoff %s", i+1, gap, want)
		}
	}
	if got := value(t, s.m.events.WithLabelValues("checkout.session.completed", "retried")); got != 2 {
		t.Errorf("retried = %v, want 2", got)
	}
	if got := value(t, s.m.events.WithLabelValues("checkout.session.completed", "applied")); got != 1 {
		t.Errorf("applied = %v, want 1", got)
	}
	if n := len(dlqMessages(t, js)); n != 0 {
		t.Errorf("DLQ holds %d messages, want 0", n)
	}
}

func TestPermanentErrorIsDeadLetteredAndTerminated(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		return "", fault.New(fault.Invalid, "amount_mismatch", "metadata amount 500 != amount_total 700")
	})
	seq := publish(t, js, "evt_bad", "checkout.session.completed")
	s := start(t, js, h, testConfig())
	testenv.Eventually(t, 5*time.Second, "dead letter", func() bool { return len(dlqMessages(t, js)) == 1 && settled(t, js) })
	time.Sleep(1300 * time.Millisecond) // past AckWait: a non-terminated message would return
	if n := len(h.callsOf("evt_bad")); n != 1 {
		t.Fatalf("handler called %d times, want 1 (terminated)", n)
	}
	dl := dlqMessages(t, js)[0]
	stored, err := js.Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := stored.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range orig.Header {
		if k == streams.HeaderMsgID {
			continue
		}
		if got := dl.Header.Values(k); fmt.Sprint(got) != fmt.Sprint(vs) {
			t.Errorf("DLQ header %s = %v, want original %v", k, got, vs)
		}
	}
	if dl.Reason != "amount_mismatch" || dl.Deliveries != 1 || dl.StreamSeq != seq ||
		dl.Error != "metadata amount 500 != amount_total 700" || string(dl.Data) != string(orig.Data) ||
		dl.Subject != "stripe.dlq.default.checkout.session.completed" {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := value(t, s.m.deadLetters.WithLabelValues("amount_mismatch")); got != 1 {
		t.Errorf("dead_letters_total{amount_mismatch} = %v, want 1", got)
	}
	if got := value(t, s.m.events.WithLabelValues("checkout.session.completed", "dead_lettered")); got != 1 {
		t.Errorf("dead_lettered = %v, want 1", got)
	}
	testenv.Eventually(t, 2*time.Second, "DLQ gauge", func() bool { return value(t, s.m.dlqMessages) == 1 })
}

func TestRetryBudgetExhaustedIsDeadLettered(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		return "", errors.New("serialization failure") // unclassified: Internal, retried
	})
	cfg := testConfig()
	publish(t, js, "evt_stuck", "charge.refunded")
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 5*time.Second, "dead letter", func() bool { return len(dlqMessages(t, js)) == 1 && settled(t, js) })
	time.Sleep(1300 * time.Millisecond)
	if n := len(h.callsOf("evt_stuck")); n != cfg.Consumer.MaxDeliver {
		t.Fatalf("handler called %d times, want MaxDeliver %d", n, cfg.Consumer.MaxDeliver)
	}
	dl := dlqMessages(t, js)[0]
	if dl.Reason != streams.ReasonMaxDeliveries || dl.Deliveries != uint64(cfg.Consumer.MaxDeliver) || dl.Error != "serialization failure" {
		t.Errorf("dead letter = %+v", dl)
	}
	if got := value(t, s.m.events.WithLabelValues("charge.refunded", "retried")); got != float64(cfg.Consumer.MaxDeliver-1) {
		t.Errorf("retried = %v, want %d", got, cfg.Consumer.MaxDeliver-1)
	}
	if got := value(t, s.m.deadLetters.WithLabelValues(streams.ReasonMaxDeliveries)); got != 1 {
		t.Errorf("dead_letters_total{max_deliveries} = %v, want 1", got)
	}
}

func TestPoisonMessagesDoNotBlockTheOnesBehind(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	h := newRecorder(func(ev stripeevent.Event, _ int) (handling.Outcome, error) {
		switch ev.ID {
		case "evt_panic":
			panic("nil map in handler")
		case "evt_slowfail":
			return "", fault.New(fault.Pending, "purchase_not_found_yet", "refund before its checkout")
		}
		return handling.Applied, nil
	})
	// Hostile messages first: no headers at all, a handler panic, an event
	// that never stops failing. (A body that is not its event is the
	// handler's to refuse: TestPayloadsThatAreNotTheirEventAreDeadLettered.)
	raw := nats.NewMsg("stripe.events.default.charge.refunded")
	raw.Data = []byte(`{"id":"evt_noheaders"}`)
	if _, err := js.PublishMsg(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "evt_panic", "charge.refunded")
	publish(t, js, "evt_slowfail", "charge.refunded")
	for i := range 5 {
		publish(t, js, fmt.Sprintf("evt_good%d", i), "checkout.session.completed")
	}
	cfg := testConfig()
	cfg.Workers = 1 // one lane: a blocking poison message would stall everything
	cfg.Consumer.MaxDeliver = 3
	cfg.Consumer.Backoff = []time.Duration{time.Second}
	start(t, js, h, cfg)
	var goodDone time.Time
	testenv.Eventually(t, 10*time.Second, "good events applied", func() bool {
		for i := range 5 {
			if len(h.callsOf(fmt.Sprintf("evt_good%d", i))) == 0 {
				return false
			}
		}
		goodDone = time.Now()
		return true
	})
	// Load-independent: the good events did not wait for the failing ones'
	// backoff; they were through before the first retry came back.
	if retry := h.callsOf("evt_slowfail"); len(retry) > 1 && retry[1].at.Before(goodDone) {
		for i := range 5 {
			if c := h.callsOf(fmt.Sprintf("evt_good%d", i)); c[0].at.After(retry[1].at) {
				t.Errorf("evt_good%d was handled only after the poison event's retry", i)
			}
		}
	}
	testenv.Eventually(t, 15*time.Second, "hostile messages dead-lettered", func() bool { return len(dlqMessages(t, js)) == 3 && settled(t, js) })
	reasons := map[string]string{}
	for _, dl := range dlqMessages(t, js) {
		id := dl.EventID
		if id == "" {
			id = "(none)"
		}
		reasons[id] = dl.Reason
	}
	want := map[string]string{"(none)": "invalid_headers", "evt_panic": "max_deliveries", "evt_slowfail": "max_deliveries"}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead-letter reasons = %v, want %v", reasons, want)
	}
}

func TestInstancesShareTheDurableConsumer(t *testing.T) {
	n := testenv.StartNATS(t)
	const events = 60
	var mu sync.Mutex
	byInstance := map[string]int{}
	applied := map[string]int{}
	handler := func(name string) handling.Handler {
		return handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
			time.Sleep(15 * time.Millisecond) // a short transaction
			mu.Lock()
			byInstance[name]++
			applied[ev.ID]++
			mu.Unlock()
			return handling.Applied, nil
		})
	}
	cfg := testConfig()
	cfg.Workers = 2
	// Exactly-once is checked here, not redelivery: a long AckWait keeps a
	// loaded CI machine from redelivering a message that waited in a buffer.
	cfg.Consumer.AckWait = 10 * time.Second
	// Streams are ensured once, before any instance creates the consumer:
	// the embedded nats-server 2.15.2 has a data race between a stream
	// update and a concurrent consumer create that -race reports.
	js := n.JetStream(t)
	var group []*started
	for i := range 3 {
		group = append(group, start(t, connect(t, n), handler(fmt.Sprint("instance", i)), cfg)) // each on its own connection
	}
	testenv.Eventually(t, 10*time.Second, "all three pulling before the burst", func() bool {
		for _, s := range group {
			if s.p.Check(context.Background()) != nil {
				return false
			}
		}
		return consumerInfo(t, js).NumWaiting >= 3
	})
	for i := range events {
		publish(t, js, fmt.Sprintf("evt_g%02d", i), "checkout.session.completed")
	}
	testenv.Eventually(t, 10*time.Second, "all events applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) == events && settled(t, js)
	})
	// Settled (nothing pending, nothing awaiting an ack) means no delivery
	// can follow, so the counts are final.
	mu.Lock()
	defer mu.Unlock()
	for id, c := range applied {
		if c != 1 {
			t.Errorf("%s applied %d times", id, c)
		}
	}
	if len(byInstance) != 3 {
		t.Fatalf("work went to %v, want all three instances", byInstance)
	}
	for name, c := range byInstance {
		if c == 0 {
			t.Errorf("%s got nothing", name)
		}
	}
}

func TestShutdownFinishesInFlightAndLosesNothing(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	const events = 20
	var mu sync.Mutex
	applied := map[string]int{}
	started1 := make(chan string, events)
	slow := handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		started1 <- ev.ID
		select {
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		mu.Lock()
		applied[ev.ID]++
		mu.Unlock()
		return handling.Applied, nil
	})
	for i := range events {
		publish(t, js, fmt.Sprintf("evt_s%02d", i), "checkout.session.completed")
	}
	cfg := testConfig()
	cfg.Workers = 2
	first := start(t, js, slow, cfg)
	inFlight := []string{<-started1, <-started1}
	if err := first.stop(t); err != nil {
		t.Fatalf("graceful stop = %v", err)
	}
	mu.Lock()
	for _, id := range inFlight {
		if applied[id] != 1 {
			t.Errorf("in-flight %s applied %d times before Run returned, want 1", id, applied[id])
		}
	}
	before := len(applied)
	mu.Unlock()
	if before >= events {
		t.Fatalf("the first instance processed everything (%d); the test needs a backlog", before)
	}
	fast := handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		mu.Lock()
		applied[ev.ID]++
		mu.Unlock()
		return handling.Applied, nil
	})
	start(t, js, fast, cfg)
	testenv.Eventually(t, 10*time.Second, "backlog applied by the new instance", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) == events && settled(t, js)
	})
	mu.Lock()
	defer mu.Unlock()
	for id, c := range applied {
		if c != 1 {
			t.Errorf("%s applied %d times, want exactly once (acked before shutdown ended)", id, c)
		}
	}
}

func TestShutdownTimeoutCancelsStuckHandlers(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	entered := make(chan struct{}, 1)
	stuck := handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return "", ctx.Err()
	})
	publish(t, js, "evt_stuck", "charge.refunded")
	cfg := testConfig()
	cfg.HandleTimeout = time.Minute
	cfg.ShutdownTimeout = 300 * time.Millisecond
	s := start(t, js, stuck, cfg)
	<-entered
	if err := s.stop(t); !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	h := newRecorder(nil)
	start(t, js, h, testConfig())
	testenv.Eventually(t, 5*time.Second, "stuck event applied by the next instance", func() bool { n, _ := h.appliedCount(); return n == 1 })
}

// processorJetStream connects to n as the processor does (streams.Connect:
// nothing buffered while reconnecting) and ensures the streams.
func processorJetStream(t *testing.T, n *testenv.NATS) jetstream.JetStream {
	t.Helper()
	nc, err := streams.Connect(n.URL(), "test-processor", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pjs, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(context.Background(), pjs, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return pjs
}

func TestBrokerRestartResumesByItself(t *testing.T) {
	n := testenv.StartNATS(t)
	h := newRecorder(nil)
	cfg := testConfig()
	start(t, processorJetStream(t, n), h, cfg)
	pub := connect(t, n)
	publish(t, pub, "evt_before", "charge.refunded")
	testenv.Eventually(t, 5*time.Second, "event before restart", func() bool { c, _ := h.appliedCount(); return c == 1 })

	n.Restart()
	testenv.Eventually(t, 10*time.Second, "publisher reconnected", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := streams.NewPublisher(pub).Publish(ctx, stripeevent.Event{ID: "evt_after", Type: "charge.refunded",
			Endpoint: "default", Created: time.Unix(1700000000, 0), ReceivedAt: time.Now(), Payload: []byte(`{"id":"evt_after","type":"charge.refunded"}`)})
		return err == nil
	})
	testenv.Eventually(t, 15*time.Second, "event after restart applied", func() bool { return len(h.callsOf("evt_after")) == 1 })
}

func TestAdvisorySafetyNetDeadLettersExhaustedEvents(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	ctx := context.Background()
	// The DLQ stream is missing when the last delivery fails, so the
	// processor cannot copy it and naks; the broker then gives up on the
	// message and emits MAX_DELIVERIES, and the listener copies it.
	if err := js.DeleteStream(ctx, streams.DLQStream); err != nil {
		t.Fatal(err)
	}
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		return "", fault.New(fault.Unavailable, "db_unavailable", "database down")
	})
	cfg := testConfig()
	cfg.Consumer.MaxDeliver = 2
	cfg.Consumer.Backoff = []time.Duration{50 * time.Millisecond}
	cfg.AckTimeout = 500 * time.Millisecond
	seq := publish(t, js, "evt_exhausted", "charge.refunded")
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 5*time.Second, "last delivery failed to dead-letter", func() bool {
		return value(t, s.m.ackErrors.WithLabelValues("dlq_publish")) >= 1
	})
	if err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "advisory copy in STRIPE_DLQ", func() bool { return len(dlqMessages(t, js)) == 1 })
	dl := dlqMessages(t, js)[0]
	if dl.Reason != streams.ReasonMaxDeliveries || dl.StreamSeq != seq || dl.EventID != "evt_exhausted" || dl.Deliveries != 2 {
		t.Errorf("dead letter = %+v", dl)
	}
	if n := len(h.callsOf("evt_exhausted")); n != 2 {
		t.Errorf("handler called %d times, want MaxDeliver 2", n)
	}
	if got := value(t, s.m.deadLetters.WithLabelValues(streams.ReasonMaxDeliveries)); got != 1 {
		t.Errorf("dead_letters_total{max_deliveries} = %v, want 1", got)
	}
}

func TestNewValidates(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(nil)
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"workers above ack pending", func(c *Config) { c.Workers = 100; c.Consumer.MaxAckPending = 10 }},
		{"negative workers", func(c *Config) { c.Workers = -1 }},
		{"backoff longer than deliveries", func(c *Config) { c.Consumer.MaxDeliver = 2 }},
		{"negative timeout", func(c *Config) { c.HandleTimeout = -time.Second }},
		{"negative partial batches", func(c *Config) { c.PartialBatches = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg)
			if _, err := New(js, h, cfg, nil, testLogger(t)); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	p, err := New(js, h, Config{}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Config(); c.Workers != DefaultWorkers || c.Consumer.AckWait != 30*time.Second || c.ShutdownTimeout != 25*time.Second ||
		c.PartialBatches != DefaultPartialBatches {
		t.Errorf("defaults = %+v", c)
	}
	// More partial slots than workers is no limit: as many as workers.
	p, err = New(js, h, Config{Workers: 1}, nil, testLogger(t))
	if err != nil || p.Config().PartialBatches != 1 {
		t.Errorf("one worker: %v, %v", p, err)
	}
}

func TestSlowHandlerIsKeptAliveNotRedelivered(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	h := newRecorder(func(stripeevent.Event, int) (handling.Outcome, error) {
		time.Sleep(2500 * time.Millisecond) // 2.5 × AckWait
		return handling.Applied, nil
	})
	cfg := testConfig()
	cfg.HandleTimeout = 5 * time.Second
	cfg.ShutdownTimeout = 8 * time.Second
	publish(t, js, "evt_slow", "checkout.session.completed")
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 8*time.Second, "slow event applied", func() bool { n, _ := h.appliedCount(); return n == 1 && settled(t, js) })
	if n := len(h.callsOf("evt_slow")); n != 1 {
		t.Fatalf("handler called %d times, want 1: InProgress should hold the message", n)
	}
	if got := value(t, s.m.ackErrors); got != 0 {
		t.Errorf("ack errors = %v, want 0", got)
	}
}

func TestReadinessFailsWhileNotConsuming(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	p, err := New(js, newRecorder(nil), testConfig(), nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err == nil {
		t.Fatal("Check passed before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "consuming", func() bool { return p.Check(context.Background()) == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err == nil {
		t.Error("Check passed after Run returned")
	}
}

func TestConsumerGaugesFollowTheBacklog(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	release := make(chan struct{})
	h := handling.HandlerFunc(func(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
		select {
		case <-release:
			return handling.Applied, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	cfg := testConfig()
	cfg.Workers = 1
	cfg.HandleTimeout = 5 * time.Second
	cfg.ShutdownTimeout = 6 * time.Second
	for i := range 6 {
		publish(t, js, fmt.Sprintf("evt_b%d", i), "charge.refunded")
	}
	s := start(t, js, h, cfg)
	testenv.Eventually(t, 5*time.Second, "backlog visible in the gauges", func() bool {
		return value(t, s.m.pending) >= 3 && value(t, s.m.ackPending) >= 1 && value(t, s.m.inFlight) == 1
	})
	close(release)
	testenv.Eventually(t, 5*time.Second, "gauges back to zero", func() bool {
		return settled(t, js) && value(t, s.m.pending) == 0 && value(t, s.m.ackPending) == 0 && value(t, s.m.inFlight) == 0
	})
}

func TestAdvisorySafetyNetCoversACrashedInstance(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.Consumer.AckWait = 2 * time.Second
	cfg.Consumer.MaxDeliver = 2
	cfg.Consumer.Backoff = []time.Duration{50 * time.Millisecond}
	seq := publish(t, js, "evt_crash", "charge.refunded")
	// A "crashed" member of the group takes both deliveries and never
	// answers: the broker gives up when the second AckWait expires.
	cons, err := streams.EnsureConsumer(ctx, connect(t, n), cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := <-batch.Messages()
		if !ok {
			t.Fatalf("delivery %d did not come", want)
		}
		md, err := m.Metadata()
		if err != nil || md.NumDelivered != want {
			t.Fatalf("delivery %d: metadata %+v, %v", want, md, err)
		}
	}
	// A healthy instance joins while the last delivery is still pending.
	h := newRecorder(nil)
	s := start(t, connect(t, n), h, cfg)
	testenv.Eventually(t, 10*time.Second, "advisory copy in STRIPE_DLQ", func() bool { return len(dlqMessages(t, js)) == 1 })
	dl := dlqMessages(t, js)[0]
	if dl.Reason != streams.ReasonMaxDeliveries || dl.StreamSeq != seq || dl.Deliveries != 2 || dl.EventID != "evt_crash" {
		t.Errorf("dead letter = %+v", dl)
	}
	if len(h.callsOf("evt_crash")) != 0 {
		t.Error("the exhausted event was delivered again")
	}
	// The copy is in STRIPE_DLQ once the broker acknowledged it, a moment
	// before the listener counts it.
	testenv.Eventually(t, 5*time.Second, "dead_letters_total{max_deliveries} = 1", func() bool {
		return value(t, s.m.deadLetters.WithLabelValues(streams.ReasonMaxDeliveries)) == 1
	})
}

func (r *recorder) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}
