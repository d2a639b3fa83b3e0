package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type payload struct {
	N int `json:"n"`
}

func add(t *testing.T, bdb *bun.DB, n int) uuid.UUID {
	t.Helper()
	id, err := outbox.Add(context.Background(), bdb, "purchases.completed", "com.paystream.purchase.completed.v1",
		uuid.New(), payload{N: n}, t0.Add(time.Duration(n)*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAddWritesCloudEvent(t *testing.T) {
	bdb, _ := testenv.DB(t)
	agg := uuid.New()
	id, err := outbox.Add(context.Background(), bdb, "purchases.completed", "com.paystream.purchase.completed.v1", agg, payload{N: 7}, t0)
	if err != nil {
		t.Fatal(err)
	}
	var row model.Outbox
	if err := bdb.NewSelect().Model(&row).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if row.Subject != "purchases.completed" || row.AggregateID != agg || row.PublishedAt != nil || !row.CreatedAt.Equal(t0) {
		t.Errorf("row = %+v", row)
	}
	var env map[string]any
	if err := json.Unmarshal(row.Payload, &env); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"specversion": "1.0", "id": id.String(), "source": "paystream/processor",
		"type": "com.paystream.purchase.completed.v1", "subject": agg.String(), "time": "2026-11-27T12:00:00Z",
		"datacontenttype": "application/json", "data": map[string]any{"n": float64(7)}}
	for k, v := range want {
		if got := env[k]; !equalJSON(got, v) {
			t.Errorf("envelope %s = %v, want %v", k, got, v)
		}
	}
	for _, subj := range []string{"stripe.events.x", "purchases.*", "purchases.>", "purchases.a b", "purchases.", "payoutsx.paid", "subscriptions.>"} {
		if _, err := outbox.Add(context.Background(), bdb, subj, "t", agg, nil, t0); err == nil {
			t.Errorf("Add accepted subject %q", subj)
		}
	}
	// Every domain family's subjects are written, by Go and by the table.
	for _, subj := range []string{"subscriptions.started", "payouts.paid", "payees.updated"} {
		if _, err := outbox.Add(context.Background(), bdb, subj, "t", agg, nil, t0); err != nil {
			t.Errorf("Add refused subject %q: %v", subj, err)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

type relayEnv struct {
	db    *bun.DB
	nats  *testenv.NATS
	js    jetstream.JetStream
	reg   *prometheus.Registry
	m     *outbox.Metrics
	relay *outbox.Relay
}

func newRelayEnv(t *testing.T, cfg outbox.RelayConfig) *relayEnv {
	t.Helper()
	bdb, _ := testenv.DB(t)
	n := testenv.StartNATS(t)
	e := &relayEnv{db: bdb, nats: n, js: n.JetStream(t), reg: prometheus.NewRegistry()}
	e.m = outbox.NewMetrics(e.reg)
	e.relay = e.newRelay(t, cfg)
	return e
}

func (e *relayEnv) newRelay(t *testing.T, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0.Add(time.Minute) }
	}
	r, err := outbox.NewRelay(e.db, e.js, cfg, e.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *relayEnv) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), streams.PurchasesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (e *relayEnv) unpublished(t *testing.T) int {
	t.Helper()
	n, err := e.db.NewSelect().Model((*model.Outbox)(nil)).Where("published_at IS NULL").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestRelayPublishesInOrderOnce(t *testing.T) {
	e := newRelayEnv(t, outbox.RelayConfig{BatchSize: 2})
	ids := []uuid.UUID{add(t, e.db, 1), add(t, e.db, 2), add(t, e.db, 3)}
	more, err := e.relay.RunOnce(context.Background())
	if err != nil || !more {
		t.Fatalf("first batch: more=%v err=%v; want a full batch", more, err)
	}
	if more, err = e.relay.RunOnce(context.Background()); err != nil || more {
		t.Fatalf("second batch: more=%v err=%v", more, err)
	}
	if more, err = e.relay.RunOnce(context.Background()); err != nil || more {
		t.Fatalf("empty batch: more=%v err=%v", more, err)
	}
	if n := e.streamMsgs(t); n != 3 {
		t.Fatalf("PURCHASES holds %d messages, want 3", n)
	}
	if n := e.unpublished(t); n != 0 {
		t.Errorf("%d rows unpublished", n)
	}
	s, _ := e.js.Stream(context.Background(), streams.PurchasesStream)
	for i, id := range ids {
		m, err := s.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Nats-Msg-Id") != id.String() || m.Header.Get("Content-Type") != "application/cloudevents+json" ||
			m.Header.Get("Ce-Type") != "com.paystream.purchase.completed.v1" || m.Subject != "purchases.completed" {
			t.Errorf("message %d: subject %s headers %v, want id %s", i+1, m.Subject, m.Header, id)
		}
		var ev streams.PurchaseEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID != id.String() {
			t.Errorf("message %d body id = %s (%v), want %s", i+1, ev.ID, err, id)
		}
	}
	if got := sum(t, e.reg, "paystream_outbox_published_total"); got != 3 {
		t.Errorf("published_total = %v", got)
	}
}

// sum adds up every series of the counter or gauge family name in reg.
func sum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// A relay that published a row and died before marking it publishes it again
// after the restart; the broker drops the copy by Nats-Msg-Id.
func TestRelayRepublishAfterCrashIsDeduplicated(t *testing.T) {
	e := newRelayEnv(t, outbox.RelayConfig{})
	id := add(t, e.db, 1)
	var row model.Outbox
	if err := e.db.NewSelect().Model(&row).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The crashed relay's publish: exactly the message the relay builds.
	if _, err := streams.PublishMsg(context.Background(), e.js, outbox.Message(row)); err != nil {
		t.Fatal(err)
	}
	restarted := e.newRelay(t, outbox.RelayConfig{})
	if _, err := restarted.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.streamMsgs(t); n != 1 {
		t.Errorf("PURCHASES holds %d messages after the re-publish, want 1", n)
	}
	if n := e.unpublished(t); n != 0 {
		t.Errorf("row not marked after re-publish")
	}
}

// With the broker down nothing is lost: the relay counts errors, records the
// attempt on the row, backs off, and publishes everything once the broker is
// back. Run ends with nil when its context ends.
func TestRelayRunSurvivesBrokerOutage(t *testing.T) {
	e := newRelayEnv(t, outbox.RelayConfig{PollInterval: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PublishTimeout: 200 * time.Millisecond})
	add(t, e.db, 1)
	e.nats.Shutdown()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() { defer wg.Done(); runErr = e.relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	testenv.Eventually(t, 15*time.Second, "a publish error", func() bool {
		return sum(t, e.reg, "paystream_outbox_publish_errors_total") > 0
	})
	var row model.Outbox
	if err := e.db.NewSelect().Model(&row).Limit(1).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if row.Attempts == 0 || row.LastError == nil || row.PublishedAt != nil {
		t.Errorf("failed row = attempts %d, last_error %v, published %v", row.Attempts, row.LastError, row.PublishedAt)
	}
	add(t, e.db, 2) // written during the outage
	testenv.Eventually(t, 15*time.Second, "backlog gauge 2", func() bool {
		return sum(t, e.reg, "paystream_outbox_backlog") == 2
	})
	if age := sum(t, e.reg, "paystream_outbox_oldest_unpublished_seconds"); age < 59 || age > 61 {
		t.Errorf("oldest age = %v, want 60s (clock is one minute after the row)", age)
	}

	e.nats.Start()
	testenv.Eventually(t, 15*time.Second, "both rows published", func() bool { return e.unpublished(t) == 0 })
	testenv.Eventually(t, 15*time.Second, "backlog gauge 0", func() bool {
		return sum(t, e.reg, "paystream_outbox_backlog") == 0
	})
	if n := e.streamMsgs(t); n != 2 {
		t.Errorf("PURCHASES holds %d messages, want 2", n)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Errorf("Run = %v, want nil on cancel", runErr)
	}
}

// Two relays (two processor instances) share the table without publishing a
// row twice: SKIP LOCKED hands each row to one of them.
func TestTwoRelaysShareTheBacklog(t *testing.T) {
	e := newRelayEnv(t, outbox.RelayConfig{BatchSize: 5, PollInterval: 10 * time.Millisecond})
	for i := 0; i < 60; i++ {
		add(t, e.db, i)
	}
	other := e.newRelay(t, outbox.RelayConfig{BatchSize: 5, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range []*outbox.Relay{e.relay, other} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	testenv.Eventually(t, 15*time.Second, "all rows published", func() bool { return e.unpublished(t) == 0 })
	cancel()
	wg.Wait()
	if n := e.streamMsgs(t); n != 60 {
		t.Errorf("PURCHASES holds %d messages, want 60", n)
	}
	if got := sum(t, e.reg, "paystream_outbox_published_total"); got != 60 {
		t.Errorf("published_total = %v, want 60 (no row published twice)", got)
	}
}

func TestNewRelayValidates(t *testing.T) {
	bdb, _ := testenv.DB(t)
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	m := outbox.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, cfg := range map[string]outbox.RelayConfig{
		"negative poll":     {PollInterval: -time.Second},
		"batch too large":   {BatchSize: 100000},
		"backoff too small": {PollInterval: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := outbox.NewRelay(bdb, js, cfg, m, log); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := outbox.NewRelay(nil, js, outbox.RelayConfig{}, m, log); err == nil {
		t.Error("nil db accepted")
	}
}

func TestPruneDeletesOnlyOldPublishedRows(t *testing.T) {
	e := newRelayEnv(t, outbox.RelayConfig{})
	old := add(t, e.db, 1)
	add(t, e.db, 2)
	if _, err := e.relay.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	unpublished := add(t, e.db, 3)
	ctx := context.Background()
	// Age the first row's publication beyond the retention; the others stay recent.
	if _, err := e.db.NewUpdate().Model((*model.Outbox)(nil)).Set("published_at = ?", t0.AddDate(0, 0, -8)).Where("id = ?", old).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.NewUpdate().Model((*model.Outbox)(nil)).Set("created_at = ?", t0.AddDate(0, 0, -30)).Where("id = ?", unpublished).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := e.relay.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	var ids []uuid.UUID
	if err := e.db.NewSelect().Model((*model.Outbox)(nil)).Column("id").Scan(ctx, &ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || slices.Contains(ids, old) || !slices.Contains(ids, unpublished) {
		t.Errorf("rows left = %v", ids)
	}
	if got := sum(t, e.reg, "paystream_outbox_pruned_total"); got != 1 {
		t.Errorf("pruned_total = %v", got)
	}
}
