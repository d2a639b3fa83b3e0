package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/reconcile/stripefake"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// fixed is the tests' clock: every fixture event is created relative to it.
var fixed = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

func now() time.Time { return fixed }

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to t.Log so they show only for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// event is one fixture event with its parsed envelope.
type event struct {
	id, typ string
	raw     []byte
}

// mustEvents builds perType events of every handled type, spread over the
// last 48h, all with fresh ids.
func mustEvents(t *testing.T, perType int) []event {
	t.Helper()
	var out []event
	for i := range perType {
		for j, typ := range purchase.HandledTypes() {
			created := fixed.Add(-time.Duration(i*len(purchase.HandledTypes())+j+1) * 17 * time.Minute)
			out = append(out, mustEvent(t, typ, created))
		}
	}
	return out
}

func mustEvent(t *testing.T, typ string, created time.Time) event {
	t.Helper()
	m := stripefixture.Meta{EventID: stripefixture.NewID("evt_", 24), Created: created}
	pi := stripefixture.NewID("pi_", 24)
	ch := stripefixture.NewID("ch_", 24)
	var raw []byte
	var err error
	switch {
	case strings.HasPrefix(typ, "checkout.session."):
		raw, err = stripefixture.CheckoutEvent(typ, m, stripefixture.Checkout{PaymentIntentID: pi, AmountTotal: 1999,
			Metadata: stripefixture.PurchaseMetadata("user_1", "2b7e0c55-0a7b-4d1e-9e49-2f4b8a4d9c11",
				"5f0d3a0e-7c44-4b43-9a4e-0c7b1f1d2e33", 1999, "usd")})
	case typ == "charge.refunded":
		raw, err = stripefixture.ChargeRefundedEvent(m, stripefixture.Charge{ChargeID: ch, PaymentIntentID: pi,
			Amount: 1999, Refunds: []stripefixture.Refund{{Amount: 1999}}})
	case strings.HasPrefix(typ, "charge.dispute."):
		raw, err = stripefixture.DisputeEvent(typ, m, stripefixture.Dispute{ChargeID: ch, PaymentIntentID: pi,
			Amount: 1999, Status: "lost"})
	case strings.HasPrefix(typ, "payment_intent."):
		raw, err = stripefixture.PaymentIntentEvent(typ, m, stripefixture.PaymentIntent{ID: pi, Amount: 1999, ChargeID: ch})
	default:
		t.Fatalf("no fixture for %s", typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return event{id: m.EventID, typ: typ, raw: raw}
}

func newFake(t *testing.T, evs ...event) *stripefake.Server {
	t.Helper()
	f := stripefake.New(t, "")
	for _, e := range evs {
		if err := f.Add(e.raw); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newLister(t *testing.T, f *stripefake.Server, key string, retries int) *reconcile.StripeLister {
	t.Helper()
	if key == "" {
		key = stripefake.Key
	}
	l, err := reconcile.NewStripeLister(stripeclient.Config{Key: key, APIBase: f.URL, MaxNetworkRetries: retries},
		testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// baseConfig is a run over the last 72h with small pages and fast backoff.
func baseConfig() reconcile.Config {
	return reconcile.Config{Since: 72 * time.Hour, Now: now, PageSize: 4, BaseDelay: 10 * time.Millisecond,
		MaxDelay: 50 * time.Millisecond}
}

// stored reads every message of STRIPE_EVENTS, keyed by Nats-Msg-Id.
func stored(t *testing.T, js jetstream.JetStream) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		id := m.Header.Get(streams.HeaderMsgID)
		if _, dup := out[id]; dup {
			t.Errorf("event %s stored twice", id)
		}
		out[id] = m
	}
	return out
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return buf.String()
}

// TestRunPublishesOnlyMissedEvents is the core promise: of a mix of events
// the broker already has and events it missed, only the missed ones are
// published; a second run publishes nothing.
func TestRunPublishesOnlyMissedEvents(t *testing.T) {
	evs := mustEvents(t, 2) // 18 handled events → 5 pages of 4
	unhandled := mustEvent(t, "charge.dispute.created", fixed.Add(-time.Hour))
	unhandled.typ = "charge.dispute.updated"
	raw, err := stripefixture.DisputeEvent("charge.dispute.updated", stripefixture.Meta{Created: fixed.Add(-time.Hour)}, stripefixture.Dispute{})
	if err != nil {
		t.Fatal(err)
	}
	unhandled.raw = raw
	tooOld := mustEvent(t, "checkout.session.completed", fixed.Add(-73*time.Hour))
	f := newFake(t, append(evs, unhandled, tooOld)...)

	js := testenv.StartNATS(t).JetStream(t)
	pub := streams.NewPublisher(js)
	ctx := t.Context()
	// The edge already delivered every third event.
	present := map[string]bool{}
	for i, e := range evs {
		if i%3 != 0 {
			continue
		}
		present[e.id] = true
		if _, err := pub.Publish(ctx, stripeevent.Event{ID: e.id, Type: e.typ, Endpoint: "default", ReceivedAt: fixed, Payload: e.raw}); err != nil {
			t.Fatal(err)
		}
	}

	var progress bytes.Buffer
	cfg := baseConfig()
	cfg.ProgressEvery = 5
	sum, err := reconcile.Run(ctx, cfg, newLister(t, f, "", 2), pub, &progress, testLogger(t))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := reconcile.Summary{Seen: 18, Published: 18 - len(present), AlreadyPresent: len(present)}
	if sum.Seen != want.Seen || sum.Published != want.Published || sum.AlreadyPresent != want.AlreadyPresent ||
		sum.Skipped != 0 || sum.Failed != 0 {
		t.Fatalf("summary = %+v, want seen=%d published=%d already_present=%d", sum, want.Seen, want.Published, want.AlreadyPresent)
	}
	if !sum.Since.Equal(fixed.Add(-72 * time.Hour)) {
		t.Errorf("since = %s, want %s", sum.Since, fixed.Add(-72*time.Hour))
	}

	// Pagination: 18 events at 4 a page is 5 pages, each asking for the
	// handled types within the window.
	reqs := f.Requests()
	if len(reqs) != 5 {
		t.Errorf("API requests = %d, want 5 pages", len(reqs))
	}
	for i, r := range reqs {
		if r.Query.Get("limit") != "4" || r.Query.Get("created[gte]") != fmt.Sprint(fixed.Add(-72*time.Hour).Unix()) {
			t.Errorf("request %d query = %v", i, r.Query)
		}
		n := 0
		for k := range r.Query {
			if strings.HasPrefix(k, "types[") {
				n++
			}
		}
		// The filter is every type the processor routes that the platform's
		// list has: the purchase and subscription families' and the payout
		// family's transfer.reversed.
		if n != len(reconcile.HandledTypes()) || n != len(purchase.HandledTypes())+len(subscription.HandledTypes())+len(payout.PlatformTypes()) {
			t.Errorf("request %d filters on %d types, want %d", i, n, len(reconcile.HandledTypes()))
		}
		if (i == 0) == r.Query.Has("starting_after") {
			t.Errorf("request %d starting_after = %q", i, r.Query.Get("starting_after"))
		}
	}

	msgs := stored(t, js)
	if len(msgs) != len(evs) {
		t.Fatalf("stream holds %d events, want %d", len(msgs), len(evs))
	}
	for _, e := range evs {
		m, ok := msgs[e.id]
		if !ok {
			t.Errorf("event %s (%s) missing from the stream", e.id, e.typ)
			continue
		}
		if present[e.id] {
			if got := m.Header.Get(streams.HeaderSource); got != "edge" {
				t.Errorf("event %s already present was replaced: source %q", e.id, got)
			}
			continue
		}
		if m.Subject != "stripe.events.default."+e.typ {
			t.Errorf("event %s subject = %s", e.id, m.Subject)
		}
		for h, want := range map[string]string{
			streams.HeaderSource: "reconcile", streams.HeaderEventType: e.typ, streams.HeaderEventID: e.id,
			streams.HeaderAPIVersion: stripefixture.APIVersion, streams.HeaderLivemode: "false",
			streams.HeaderRequestID: "reconcile-" + sum.RunID, streams.HeaderReceivedAt: fixed.Format(time.RFC3339Nano),
		} {
			if got := m.Header.Get(h); got != want {
				t.Errorf("event %s header %s = %q, want %q", e.id, h, got, want)
			}
		}
		if compact(t, m.Data) != compact(t, e.raw) {
			t.Errorf("event %s body differs from what Stripe served:\n got %s\nwant %s", e.id, m.Data, e.raw)
		}
	}
	if _, ok := msgs[unhandled.id]; ok {
		t.Error("unhandled event type was published")
	}
	if _, ok := msgs[tooOld.id]; ok {
		t.Error("event older than the window was published")
	}
	out := progress.String()
	if strings.Count(out, "reconcile progress:") < 3 || !strings.Contains(out, "reconcile done: seen=18 published=12 already_present=6") {
		t.Errorf("progress output:\n%s", out)
	}

	// Running again finds everything present and publishes nothing.
	again, err := reconcile.Run(ctx, cfg, newLister(t, f, "", 2), pub, io.Discard, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if again.Published != 0 || again.AlreadyPresent != 18 || again.Seen != 18 {
		t.Errorf("second run = %+v, want everything already present", again)
	}
	if n := len(stored(t, js)); n != len(evs) {
		t.Errorf("stream holds %d events after the second run, want %d", n, len(evs))
	}
}

// TestRunRetriesStripeErrors covers Stripe's failure answers: a 429 marked
// Stripe-Should-Retry is retried by stripe-go itself; a plain rate-limit 429
// or a 5xx that outlasts stripe-go's retries is retried by Run's backoff,
// honouring Retry-After, resuming after the last event handled.
func TestRunRetriesStripeErrors(t *testing.T) {
	rateLimit := func(shouldRetry string) stripefake.Failure {
		return stripefake.Failure{Status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit",
			Header: http.Header{"Stripe-Should-Retry": {shouldRetry}, "Retry-After": {"1"}}}
	}
	unavailable := stripefake.Failure{Status: http.StatusServiceUnavailable}
	tests := []struct {
		name         string
		retries      int // stripe-go MaxNetworkRetries
		afterReqs    int // failures start after this many requests
		failures     []stripefake.Failure
		wantBackoffs int
		wantMinTime  time.Duration
		wantErr      fault.Code
	}{
		{name: "429 retried by stripe-go", retries: 5, afterReqs: 1,
			failures: []stripefake.Failure{rateLimit("true"), rateLimit("true")}, wantMinTime: time.Second},
		{name: "429 not marked retryable, our backoff honours Retry-After", retries: 5, afterReqs: 2,
			failures: []stripefake.Failure{rateLimit("false")}, wantBackoffs: 1, wantMinTime: time.Second},
		{name: "503 beyond stripe-go retries, our backoff", retries: 1, afterReqs: 1,
			failures: []stripefake.Failure{unavailable, unavailable, unavailable}, wantBackoffs: 1},
		{name: "503 forever gives up", retries: 0, afterReqs: 0,
			failures:     []stripefake.Failure{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable, unavailable},
			wantBackoffs: 5, wantErr: fault.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := mustEvents(t, 1) // 9 events → 3 pages of 4
			f := newFake(t, evs...)
			f.FailFrom(tt.afterReqs, tt.failures...)
			js := testenv.StartNATS(t).JetStream(t)
			start := time.Now()
			sum, err := reconcile.Run(t.Context(), baseConfig(), newLister(t, f, "", tt.retries), streams.NewPublisher(js),
				io.Discard, testLogger(t))
			took := time.Since(start)
			if tt.wantErr != "" {
				if err == nil || fault.CodeOf(err) != tt.wantErr {
					t.Fatalf("Run err = %v (code %s), want %s", err, fault.CodeOf(err), tt.wantErr)
				}
				if sum.Backoffs != tt.wantBackoffs {
					t.Errorf("backoffs = %d, want %d", sum.Backoffs, tt.wantBackoffs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sum.Seen != 9 || sum.Published != 9 || sum.AlreadyPresent != 0 {
				t.Errorf("summary = %+v, want all 9 published exactly once", sum)
			}
			if sum.Backoffs != tt.wantBackoffs {
				t.Errorf("backoffs = %d, want %d", sum.Backoffs, tt.wantBackoffs)
			}
			if took < tt.wantMinTime {
				t.Errorf("run took %s, want at least %s (the retry delay)", took, tt.wantMinTime)
			}
			if got, want := len(f.Requests()), 3+len(tt.failures); got != want {
				t.Errorf("API requests = %d, want %d (3 pages + %d failed)", got, want, len(tt.failures))
			}
			if n := len(stored(t, js)); n != 9 {
				t.Errorf("stream holds %d events, want 9", n)
			}
		})
	}
}

func TestRunAuthErrorIsClearAndNotRetried(t *testing.T) {
	f := newFake(t, mustEvents(t, 1)...)
	js := testenv.StartNATS(t).JetStream(t)
	_, err := reconcile.Run(t.Context(), baseConfig(), newLister(t, f, "sk_test_wrongwrongwrong", 5),
		streams.NewPublisher(js), io.Discard, testLogger(t))
	if fault.CodeOf(err) != fault.Unauthenticated {
		t.Fatalf("Run err = %v, want Unauthenticated", err)
	}
	for _, want := range []string{"STRIPE_SECRET_KEY", "401", "Invalid API Key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrongwrongwrong") {
		t.Errorf("error leaks the key: %v", err)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("API requests = %d, want 1 (a 401 is not retried)", n)
	}
	if n := len(stored(t, js)); n != 0 {
		t.Errorf("stream holds %d events, want 0", n)
	}
}

func TestRunDryRunPublishesNothing(t *testing.T) {
	f := newFake(t, mustEvents(t, 1)...)
	cfg := baseConfig()
	cfg.DryRun = true
	cfg.Types = []string{"charge.refunded", "charge.dispute.closed"}
	var progress bytes.Buffer
	sum, err := reconcile.Run(t.Context(), cfg, newLister(t, f, "", 0), nil, &progress, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Seen != 2 || sum.Candidates != 2 || sum.Published != 0 {
		t.Errorf("summary = %+v, want 2 seen, 2 candidates", sum)
	}
	if !strings.Contains(progress.String(), "would_publish=2") {
		t.Errorf("progress = %q", progress.String())
	}
}

// listerFunc is a Lister serving fixed items, for hostile input.
type listerFunc func(ctx context.Context, q reconcile.Query, fn func(reconcile.Listed) error) error

func (f listerFunc) ListEvents(ctx context.Context, q reconcile.Query, fn func(reconcile.Listed) error) error {
	return f(ctx, q, fn)
}

func items(ls ...reconcile.Listed) reconcile.Lister {
	return listerFunc(func(_ context.Context, q reconcile.Query, fn func(reconcile.Listed) error) error {
		start := 0
		for i, l := range ls {
			if q.StartingAfter != "" && l.ID == q.StartingAfter {
				start = i + 1
			}
		}
		for _, l := range ls[start:] {
			if err := fn(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// recorder is a Publisher that records and can fail.
type recorder struct {
	mu    sync.Mutex
	fails int // fail this many publishes with ErrUnavailable first
	got   []stripeevent.Event
}

func (r *recorder) Publish(_ context.Context, ev stripeevent.Event) (streams.PubResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := streams.Msg(ev); err != nil {
		return streams.PubResult{}, err
	}
	if r.fails > 0 {
		r.fails--
		return streams.PubResult{}, fmt.Errorf("%w: broker down", streams.ErrUnavailable)
	}
	r.got = append(r.got, ev)
	return streams.PubResult{Sequence: uint64(len(r.got))}, nil
}

func TestRunSkipsHostileEvents(t *testing.T) {
	good := reconcile.Listed{ID: "evt_good", Type: "charge.refunded", Created: fixed.Unix(), Raw: json.RawMessage(`{"id":"evt_good"}`)}
	tests := []struct {
		name string
		item reconcile.Listed
	}{
		{"type outside the filter", reconcile.Listed{ID: "evt_1", Type: "customer.created", Raw: json.RawMessage(`{}`)}},
		{"wildcard type", reconcile.Listed{ID: "evt_2", Type: "charge.>", Raw: json.RawMessage(`{}`)}},
		{"not an event id", reconcile.Listed{ID: "ch_3", Type: "charge.refunded", Raw: json.RawMessage(`{}`)}},
		{"empty id", reconcile.Listed{ID: "", Type: "charge.refunded", Raw: json.RawMessage(`{}`)}},
		{"broken JSON", reconcile.Listed{ID: "evt_4", Type: "charge.refunded", Raw: json.RawMessage(`{"id":`)}},
		{"JSON array", reconcile.Listed{ID: "evt_5", Type: "charge.refunded", Raw: json.RawMessage(`[]`)}},
		{"no body", reconcile.Listed{ID: "evt_6", Type: "charge.refunded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			reg := prometheus.NewRegistry()
			cfg := baseConfig()
			cfg.Metrics = reconcile.NewMetrics(reg)
			sum, err := reconcile.Run(t.Context(), cfg, items(tt.item, good), rec, io.Discard, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Skipped != 1 || sum.Published != 1 || len(rec.got) != 1 || rec.got[0].ID != "evt_good" {
				t.Errorf("summary = %+v, published %v; want the hostile item skipped, the good one published", sum, rec.got)
			}
			if got := counter(t, reg, "paystream_reconcile_events_total", "skipped"); got != 1 {
				t.Errorf("skipped metric = %v, want 1", got)
			}
		})
	}
}

func TestRunBrokerOutage(t *testing.T) {
	evs := []reconcile.Listed{
		{ID: "evt_a", Type: "charge.refunded", Raw: json.RawMessage(`{"id":"evt_a"}`)},
		{ID: "evt_b", Type: "charge.refunded", Raw: json.RawMessage(`{"id":"evt_b"}`)},
	}
	t.Run("short outage is waited out", func(t *testing.T) {
		rec := &recorder{fails: 2}
		sum, err := reconcile.Run(t.Context(), baseConfig(), items(evs...), rec, io.Discard, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Published != 2 || sum.Backoffs != 2 || sum.Failed != 0 {
			t.Errorf("summary = %+v, want 2 published after 2 backoffs", sum)
		}
	})
	t.Run("long outage stops the run", func(t *testing.T) {
		rec := &recorder{fails: 100}
		sum, err := reconcile.Run(t.Context(), baseConfig(), items(evs...), rec, io.Discard, testLogger(t))
		if !errors.Is(err, streams.ErrUnavailable) {
			t.Fatalf("Run err = %v, want ErrUnavailable", err)
		}
		if sum.Failed != 1 || sum.Published != 0 || sum.Seen != 1 || sum.Error == "" {
			t.Errorf("summary = %+v, want stop at the first event with failed=1", sum)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*reconcile.Config)
		want   string
	}{
		{"zero window", func(c *reconcile.Config) { c.Since = 0 }, "since"},
		{"window beyond 30 days", func(c *reconcile.Config) { c.Since = 31 * 24 * time.Hour }, "30 days"},
		{"unhandled type", func(c *reconcile.Config) { c.Types = []string{"customer.created"} }, "not handled"},
		{"too many types", func(c *reconcile.Config) { c.Types = make([]string, 21) }, "at most 20"},
		{"bad endpoint", func(c *reconcile.Config) { c.Endpoint = "a.b" }, "endpoint"},
		{"page too big", func(c *reconcile.Config) { c.PageSize = 101 }, "page size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.modify(&cfg)
			_, err := reconcile.Run(t.Context(), cfg, items(), &recorder{}, io.Discard, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if len(reconcile.HandledTypes()) > reconcile.MaxTypes {
		t.Errorf("HandledTypes has %d entries; Stripe filters on at most %d", len(reconcile.HandledTypes()), reconcile.MaxTypes)
	}
	for _, typ := range reconcile.HandledTypes() {
		if !streams.ValidEventType(typ) {
			t.Errorf("handled type %q is not a valid subject token", typ)
		}
	}
}

func TestPeriodicRunsUntilCancelled(t *testing.T) {
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	cfg := baseConfig()
	cfg.Metrics = reconcile.NewMetrics(reg)
	runs := make(chan struct{}, 10)
	lister := listerFunc(func(_ context.Context, q reconcile.Query, fn func(reconcile.Listed) error) error {
		runs <- struct{}{}
		return fn(reconcile.Listed{ID: "evt_p", Type: "charge.refunded", Raw: json.RawMessage(`{}`)})
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- reconcile.Periodic(ctx, 20*time.Millisecond, cfg, lister, rec, testLogger(t)) }()
	for range 2 {
		select {
		case <-runs:
		case <-time.After(5 * time.Second):
			t.Fatal("periodic run did not happen")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Periodic = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Periodic did not stop after cancel")
	}
	if got := counter(t, reg, "paystream_reconcile_runs_total", "ok"); got < 1 {
		t.Errorf("ok runs metric = %v, want ≥ 1", got)
	}

	if err := reconcile.Periodic(t.Context(), time.Hour, reconcile.Config{Since: time.Minute}, lister, rec, testLogger(t)); err == nil {
		t.Error("Periodic accepted a window shorter than its interval")
	}
}

// counter returns the value of the series of name whose one label is value.
func counter(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, value)
	return 0
}
