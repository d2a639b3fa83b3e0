package streams_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func TestEnsureIsIdempotentAndUpdates(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)
	js, err := streams.NewJetStream(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := streams.DefaultConfig()
	for i := 0; i < 2; i++ {
		if err := streams.Ensure(ctx, js, cfg); err != nil {
			t.Fatalf("Ensure #%d: %v", i+1, err)
		}
	}
	cfg.DedupWindow = 10 * time.Minute
	if err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Duplicates; got != 10*time.Minute {
		t.Errorf("dedup window after update = %s, want 10m", got)
	}
	if info.Config.Storage != jetstream.FileStorage {
		t.Errorf("storage = %v, want file", info.Config.Storage)
	}
	for _, name := range []string{streams.EventsStream, streams.DLQStream, streams.PurchasesStream} {
		if err := streams.Check(ctx, js, name); err != nil {
			t.Errorf("Check(%s) = %v", name, err)
		}
	}
	if err := streams.Check(ctx, js, "NOPE"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Check(NOPE) = %v, want ErrStreamNotFound", err)
	}
}

func TestPublishDedupsOnEventID(t *testing.T) {
	ctx := context.Background()
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	p := streams.NewPublisher(js)
	ev := stripeevent.Event{ID: "evt_1", Type: "checkout.session.completed", APIVersion: "2023-10-16",
		Endpoint: streams.DefaultEndpoint, Created: time.Unix(1700000000, 0), ReceivedAt: time.Now(), Payload: []byte(`{"id":"evt_1"}`)}
	first, err := p.Publish(ctx, ev)
	if err != nil || first.Duplicate {
		t.Fatalf("first publish = %+v, %v", first, err)
	}
	second, err := p.Publish(ctx, ev)
	if err != nil || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish = %+v, %v; want duplicate of seq %d", second, err, first.Sequence)
	}
	stream, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "stripe.events.default.checkout.session.completed")
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{
		streams.HeaderMsgID: "evt_1", streams.HeaderEventType: "checkout.session.completed",
		streams.HeaderEndpoint: "default", streams.HeaderAPIVersion: "2023-10-16",
		streams.HeaderLivemode: "false", streams.HeaderCreated: "1700000000", streams.HeaderSource: "edge",
	} {
		if got := msg.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
}

func TestPublishWhileBrokerDownIsUnavailable(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	p := streams.NewPublisher(js)
	n.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := p.Publish(ctx, stripeevent.Event{ID: "evt_2", Type: "charge.refunded", Endpoint: "default", Payload: []byte("{}")})
	if !errors.Is(err, streams.ErrUnavailable) {
		t.Fatalf("publish with broker down = %v, want ErrUnavailable", err)
	}
}

func TestSubjectsRejectWildcards(t *testing.T) {
	tests := []struct {
		name, endpoint, typ string
		ok                  bool
	}{
		{"plain", "default", "checkout.session.completed", true},
		{"named", "booking", "charge.dispute.closed", true},
		{"wildcard type", "default", "checkout.*", false},
		{"tail wildcard", "default", ">", false},
		{"space", "default", "charge refunded", false},
		{"empty type", "default", "", false},
		{"upper endpoint", "Booking", "charge.refunded", false},
		{"dotted endpoint", "a.b", "charge.refunded", false},
		{"empty token", "default", "charge..refunded", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := streams.EventSubject(tt.endpoint, tt.typ)
			if (err == nil) != tt.ok {
				t.Fatalf("EventSubject(%q, %q) err = %v, want ok=%v", tt.endpoint, tt.typ, err, tt.ok)
			}
		})
	}
}

// A deployment made before the streams discarded new messages at a limit
// (STRIPE_EVENTS used DiscardOld, and STRIPE_ADVISORIES did not exist) is
// upgraded in place by Ensure.
func TestEnsureUpgradesDiscardPolicyAndAddsAdvisories(t *testing.T) {
	ctx := context.Background()
	js, err := streams.NewJetStream(testenv.StartNATS(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	old := streams.DefaultConfig().Definitions()[0]
	old.Discard = jetstream.DiscardOld
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.Discard; d != jetstream.DiscardNew {
		t.Errorf("STRIPE_EVENTS discard = %v after Ensure, want new", d)
	}
	a, err := js.Stream(ctx, streams.AdvisoriesStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := a.CachedInfo().Config; c.Retention != jetstream.WorkQueuePolicy || len(c.Subjects) != 1 || c.Subjects[0] != streams.MaxDeliveriesAdvisorySubject {
		t.Errorf("STRIPE_ADVISORIES config = %+v", c)
	}
}

// Ensure against streams that are up to date sends no update (no
// STREAM.UPDATED advisory); a changed setting is applied, and a limit an
// operator set on a field the definitions leave alone survives both.
func TestEnsureUpdatesOnlyWhatChanged(t *testing.T) {
	ctx := t.Context()
	nc := testenv.StartNATS(t).Connect(t)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := streams.DefaultConfig()
	if err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	operator := s.CachedInfo().Config
	operator.MaxBytes = 1 << 30
	if _, err := js.UpdateStream(ctx, operator); err != nil {
		t.Fatal(err)
	}
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if m, err := updates.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("Ensure with nothing to change updated a stream: %s", m.Subject)
	}
	cfg.DedupWindow = 10 * time.Minute
	if err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for {
		m, err := updates.NextMsg(300 * time.Millisecond)
		if err != nil {
			break
		}
		got[m.Subject] = true
	}
	for _, name := range []string{streams.EventsStream, streams.DLQStream, streams.PurchasesStream} {
		if !got["$JS.EVENT.ADVISORY.STREAM.UPDATED."+name] {
			t.Errorf("no update of %s for the new dedup window (updates: %v)", name, got)
		}
	}
	if got["$JS.EVENT.ADVISORY.STREAM.UPDATED."+streams.AdvisoriesStream] {
		t.Errorf("%s was updated though nothing of it changed", streams.AdvisoriesStream)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != 10*time.Minute || info.Config.MaxBytes != 1<<30 {
		t.Errorf("after Ensure: dedup window %s, max_bytes %d; want 10m and the operator's 1 GiB", info.Config.Duplicates, info.Config.MaxBytes)
	}
}

// staleJS answers the first lookup of each stream with "not found", as a
// process sees it when another creates the stream right after its lookup.
type staleJS struct {
	jetstream.JetStream
	seen map[string]bool
}

func (s *staleJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if !s.seen[name] {
		s.seen[name] = true
		return nil, jetstream.ErrStreamNotFound
	}
	return s.JetStream.Stream(ctx, name)
}

// A stream created by another process between Ensure's lookup and its create
// (with another configuration, so the create fails) is looked up again and
// brought up to date; many processes ensuring at once all succeed and,
// having nothing to change, send no update.
func TestEnsureRacingAnotherProcess(t *testing.T) {
	ctx := t.Context()
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	other := streams.DefaultConfig()
	other.DedupWindow = 5 * time.Minute
	if err := streams.Ensure(ctx, js, other); err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, &staleJS{JetStream: js, seen: map[string]bool{}}, streams.DefaultConfig()); err != nil {
		t.Fatalf("Ensure after losing the create: %v", err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.CachedInfo().Config.Duplicates, streams.DefaultConfig().DedupWindow; got != want {
		t.Errorf("dedup window %s, want %s", got, want)
	}

	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			pjs, err := streams.NewJetStream(n.Connect(t))
			if err == nil {
				err = streams.Ensure(ctx, pjs, streams.DefaultConfig())
			}
			if err != nil {
				t.Errorf("concurrent Ensure: %v", err)
			}
		})
	}
	wg.Wait()
	if m, err := updates.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("concurrent Ensures with nothing to change updated %s", m.Subject)
	}
}

// PURCHASES carries every domain family under its own prefix; the outbox
// writes only literal subjects under one of them.
func TestDomainSubjects(t *testing.T) {
	var purchases jetstream.StreamConfig
	for _, d := range streams.DefaultConfig().Definitions() {
		if d.Name == streams.PurchasesStream {
			purchases = d
		}
	}
	want := []string{"purchases.>", "subscriptions.>", "payouts.>", "payees.>"}
	if !slices.Equal(purchases.Subjects, want) {
		t.Errorf("PURCHASES subjects = %v, want %v", purchases.Subjects, want)
	}
	for subj, ok := range map[string]bool{
		"purchases.completed": true, "subscriptions.renewed": true, "payouts.failed": true, "payees.updated": true,
		"purchases.": false, "payouts.*": false, "payees.>": false, "payees.a b": false, "ledger.posted": false, "": false,
	} {
		if got := streams.IsDomainSubject(subj); got != ok {
			t.Errorf("IsDomainSubject(%q) = %v, want %v", subj, got, ok)
		}
	}
}
