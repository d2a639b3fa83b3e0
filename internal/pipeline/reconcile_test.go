package pipeline_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/outbox"

	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/reconcile/stripefake"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// dbState is what a reconcile run may change, for before/after comparisons.
type dbState struct {
	purchases map[string]purchaseRow // by checkout session
	access    map[string]time.Time   // updated_at by user
	events    int                    // stripe_events rows
	outbox    int                    // outbox rows
}

type purchaseRow struct {
	id        uuid.UUID
	status    string
	refunded  int64
	updatedAt time.Time
}

func (s *stack) snapshot() dbState {
	s.t.Helper()
	ctx := context.Background()
	st := dbState{purchases: map[string]purchaseRow{}, access: map[string]time.Time{},
		events: s.count("stripe_events", "TRUE"), outbox: s.count("outbox", "TRUE")}
	var ps []model.Purchase
	if err := s.db.NewSelect().Model(&ps).Scan(ctx); err != nil {
		s.t.Fatal(err)
	}
	for _, p := range ps {
		st.purchases[p.StripeCheckoutSessionID] = purchaseRow{p.ID, p.Status, p.RefundAmountCents, p.UpdatedAt}
	}
	var as []model.ContentAccess
	if err := s.db.NewSelect().Model(&as).Scan(ctx); err != nil {
		s.t.Fatal(err)
	}
	for _, a := range as {
		st.access[a.UserID] = a.UpdatedAt
	}
	return st
}

func (a dbState) equal(b dbState) bool {
	if a.events != b.events || a.outbox != b.outbox || len(a.purchases) != len(b.purchases) || len(a.access) != len(b.access) {
		return false
	}
	for k, v := range a.purchases {
		w, ok := b.purchases[k]
		if !ok || v.id != w.id || v.status != w.status || v.refunded != w.refunded || !v.updatedAt.Equal(w.updatedAt) {
			return false
		}
	}
	for k, v := range a.access {
		if w, ok := b.access[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// Reconcile against a fake Stripe Events API that lists a mix of events the
// edge delivered and events it never saw: only the missed ones change the
// database, the summary says which were which, and a second run changes
// nothing at all.
func TestReconcileAppliesOnlyMissedEvents(t *testing.T) {
	s := newStack(t)
	s.startProcessor(procOpts{})
	s.startProcessor(procOpts{})
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Second)

	// Delivered through the edge and applied.
	delivered := [][]byte{
		s.checkout(typeCompleted, "evt_rec_d1", "cs_rec_d1", t0, nil),
		s.checkout(typeCompleted, "evt_rec_d2", "cs_rec_d2", t0.Add(time.Minute), nil),
	}
	for _, b := range delivered {
		s.mustPost(b)
	}
	s.waitSettled(20 * time.Second)
	before := s.snapshot()
	if len(before.purchases) != 2 || before.events != 2 {
		t.Fatalf("before reconcile: %d purchases, %d events; want 2, 2", len(before.purchases), before.events)
	}

	// Missed: a refund of a delivered purchase, a new checkout, and a new
	// checkout with its refund (listed newest first, so the refund is
	// published before its checkout and has to wait for it).
	missed := [][]byte{
		s.fullRefund("evt_rec_m1", "cs_rec_d1", t0.Add(2*time.Minute)),
		s.checkout(typeCompleted, "evt_rec_m2", "cs_rec_m2", t0.Add(3*time.Minute), nil),
		s.checkout(typeCompleted, "evt_rec_m3", "cs_rec_m3", t0.Add(4*time.Minute), nil),
		s.fullRefund("evt_rec_m4", "cs_rec_m3", t0.Add(5*time.Minute)),
	}
	fake := stripefake.New(t, "")
	if err := fake.Add(append(append([][]byte{}, delivered...), missed...)...); err != nil {
		t.Fatal(err)
	}
	lister, err := reconcile.NewStripeLister(stripeclient.Config{Key: stripefake.Key, APIBase: fake.URL}, s.log)
	if err != nil {
		t.Fatal(err)
	}
	run := func(idx reconcile.Index, pub reconcile.Publisher) reconcile.Summary {
		t.Helper()
		sum, err := reconcile.Run(context.Background(), reconcile.Config{
			Since: 2 * time.Hour, Index: idx, PageSize: 2,
			BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
		}, lister, pub, io.Discard, s.log)
		if err != nil {
			t.Fatalf("reconcile: %v (summary %+v)", err, sum)
		}
		return sum
	}

	// The first page is refused once with a 429, as Stripe does under load.
	fake.FailNext(stripefake.Failure{Status: http.StatusTooManyRequests, Code: "rate_limit"})
	index, pub := reconcile.StreamIndex{JS: s.js}, streams.NewPublisher(s.js)
	sum := run(index, pub)
	if sum.Seen != 6 || sum.Published != 4 || sum.AlreadyPresent != 2 || sum.Indexed != 2 || sum.Skipped != 0 ||
		sum.Failed != 0 || sum.Backoffs != 1 {
		t.Errorf("first run summary = %+v\nwant seen 6, published 4, already present 2, indexed 2, one backoff", sum)
	}
	s.waitSettled(30 * time.Second)
	after := s.snapshot()

	// Only the missed events changed anything.
	if after.events != 6 {
		t.Errorf("%d stripe_events rows, want 6", after.events)
	}
	if len(after.purchases) != 4 {
		t.Errorf("%d purchases, want 4: %+v", len(after.purchases), after.purchases)
	}
	wantStatus := map[string]string{"cs_rec_d1": model.PurchaseRefunded, "cs_rec_d2": model.PurchaseCompleted,
		"cs_rec_m2": model.PurchaseCompleted, "cs_rec_m3": model.PurchaseRefunded}
	for sess, st := range wantStatus {
		if got := after.purchases[sess].status; got != st {
			t.Errorf("%s is %q, want %q", sess, got, st)
		}
	}
	if d1 := after.purchases["cs_rec_d1"]; d1.id != before.purchases["cs_rec_d1"].id || d1.refunded != price {
		t.Errorf("cs_rec_d1 after the missed refund = %+v, was %+v", d1, before.purchases["cs_rec_d1"])
	}
	if d2 := after.purchases["cs_rec_d2"]; d2 != before.purchases["cs_rec_d2"] {
		t.Errorf("cs_rec_d2 changed although nothing was missed for it: %+v → %+v", before.purchases["cs_rec_d2"], d2)
	}
	if !after.access[customerPrefix+"cs_rec_d2"].Equal(before.access[customerPrefix+"cs_rec_d2"]) {
		t.Error("the access row of cs_rec_d2 was touched")
	}
	var appliedDelivered []string
	if err := s.db.NewSelect().Model((*model.StripeEvent)(nil)).Column("event_id").Where("event_id LIKE 'evt_rec_d%'").
		Where("outcome = ?", model.EventApplied).Scan(context.Background(), &appliedDelivered); err != nil {
		t.Fatal(err)
	}
	if len(appliedDelivered) != 2 {
		t.Errorf("delivered events recorded as applied: %v, want both, once", appliedDelivered)
	}
	if v := s.metric(eventsTotal, events(typeCompleted, "duplicate")); v != 0 {
		t.Errorf("events_total{duplicate} = %v: a delivered event was processed again", v)
	}
	if c := s.subjectCounts(streams.PurchasesStream, "purchases.>"); c["purchases.completed"] != 4 || c["purchases.refunded"] != 2 {
		t.Errorf("PURCHASES subjects = %v, want 4 completed, 2 refunded", c)
	}
	if c := s.subjectCounts(streams.EventsStream, "stripe.events.>"); c["stripe.events.default."+typeCompleted]+
		c["stripe.events.default."+typeRefunded] != 6 {
		t.Errorf("STRIPE_EVENTS subjects = %v, want 6 messages", c)
	}

	// A second run finds everything present and changes nothing.
	lastSeq := s.lastSeq(streams.EventsStream)
	sum = run(index, pub)
	if sum.Seen != 6 || sum.Published != 0 || sum.AlreadyPresent != 6 || sum.Failed != 0 {
		t.Errorf("second run summary = %+v, want seen 6, published 0, already present 6", sum)
	}
	s.waitSettled(20 * time.Second)
	if got := s.lastSeq(streams.EventsStream); got != lastSeq {
		t.Errorf("second run stored %d messages on STRIPE_EVENTS", got-lastSeq)
	}
	if again := s.snapshot(); !again.equal(after) {
		t.Errorf("second run changed the database:\nbefore %+v\nafter  %+v", after, again)
	}

	// A run after the broker's dedup window, without the index: every
	// event is stored again, and stripe_events drops them all.
	sum = run(nil, lateRepublisher{s: s})
	if sum.Seen != 6 || sum.Published != 6 || sum.Failed != 0 {
		t.Errorf("late run summary = %+v, want seen 6, published 6", sum)
	}
	s.waitSettled(20 * time.Second)
	if got := s.lastSeq(streams.EventsStream); got != lastSeq+6 {
		t.Errorf("late run stored %d messages on STRIPE_EVENTS, want 6", got-lastSeq)
	}
	if again := s.snapshot(); !again.equal(after) {
		t.Errorf("late run changed the database:\nbefore %+v\nafter  %+v", after, again)
	}
	dup := s.metric(eventsTotal, events(typeCompleted, "duplicate")) + s.metric(eventsTotal, events(typeRefunded, "duplicate"))
	if dup != 6 {
		t.Errorf("events_total{duplicate} = %v after the late run, want 6", dup)
	}
	if dl := s.dlq(); len(dl) != 0 {
		t.Errorf("dead letters: %s", describeLetters(dl))
	}
}

// lateRepublisher publishes like streams.Publisher but under a fresh
// Nats-Msg-Id, as if the broker's dedup window had passed since the edge
// stored the event: only the processor's stripe_events can drop it then.
type lateRepublisher struct{ s *stack }

func (p lateRepublisher) Publish(ctx context.Context, ev stripeevent.Event) (streams.PubResult, error) {
	m, err := streams.Msg(ev)
	if err != nil {
		return streams.PubResult{}, err
	}
	m.Header.Set(streams.HeaderMsgID, ev.ID+"-after-dedup-window")
	return streams.PublishMsg(ctx, p.s.js, m)
}

// lastSeq is the last sequence of stream.
func (s *stack) lastSeq(stream string) uint64 {
	s.t.Helper()
	st, err := s.js.Stream(context.Background(), stream)
	if err != nil {
		s.t.Fatal(err)
	}
	return st.CachedInfo().State.LastSeq
}

// The processor's periodic mode, wired by processorservice.PurchaseDomain as
// cmd/processor wires it: two instances each reconcile on their own timer,
// the missed events are recovered without anyone running a command, and the
// runs that follow (on both instances) change nothing.
func TestPeriodicReconcileRecoversMissedEvents(t *testing.T) {
	s := newStack(t)
	fake := stripefake.New(t, "")
	pc := processorconfig.Domain{
		Relay: outbox.RelayConfig{PollInterval: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond},
		// Below the 1m minimum the environment allows, so the test does
		// not wait; Domain takes the settings as given.
		Reconcile: reconcile.Settings{SecretKey: stripefake.Key, APIBase: fake.URL, Interval: 200 * time.Millisecond,
			Window: time.Hour, Endpoint: streams.DefaultEndpoint},
	}
	t0 := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	delivered := s.checkout(typeCompleted, "evt_per_d1", "cs_per_d1", t0, nil)
	s.mustPost(delivered)
	missed := [][]byte{
		s.checkout(typeCompleted, "evt_per_m1", "cs_per_m1", t0.Add(time.Minute), nil),
		s.fullRefund("evt_per_m2", "cs_per_d1", t0.Add(2*time.Minute)),
	}
	if err := fake.Add(append([][]byte{delivered}, missed...)...); err != nil {
		t.Fatal(err)
	}
	s.startProcessor(procOpts{domain: &pc})
	s.startProcessor(procOpts{domain: &pc})

	okRuns := func() float64 { return s.metric("paystream_reconcile_runs_total", map[string]string{"outcome": "ok"}) }
	eventually(t, 20*time.Second, "the missed events to be recovered", func() bool {
		return s.count("stripe_events", "TRUE") == 3
	})
	s.waitSettled(20 * time.Second)
	after := s.snapshot()
	if got := after.purchases["cs_per_d1"].status; got != model.PurchaseRefunded {
		t.Errorf("cs_per_d1 is %q, want refunded by the recovered refund", got)
	}
	if got := after.purchases["cs_per_m1"].status; got != model.PurchaseCompleted {
		t.Errorf("cs_per_m1 is %q, want completed by the recovered checkout", got)
	}
	if v := s.metric("paystream_reconcile_events_total", map[string]string{"result": "published"}); v != 2 {
		t.Errorf("reconcile_events_total{published} = %v over both instances, want 2", v)
	}

	// More runs on both instances find everything present.
	runs := okRuns()
	eventually(t, 20*time.Second, "four more periodic runs", func() bool { return okRuns() >= runs+4 })
	s.waitSettled(20 * time.Second)
	if again := s.snapshot(); !again.equal(after) {
		t.Errorf("later periodic runs changed the database:\nbefore %+v\nafter  %+v", after, again)
	}
	if v := s.metric("paystream_reconcile_events_total", map[string]string{"result": "published"}); v != 2 {
		t.Errorf("reconcile_events_total{published} = %v after more runs, want still 2", v)
	}
	if v := s.metric("paystream_reconcile_runs_total", map[string]string{"outcome": "error"}); v != 0 {
		t.Errorf("%v periodic runs failed", v)
	}
}
