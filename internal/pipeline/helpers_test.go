package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/pipeline/pipelinetest"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// The full-stack harness: embedded JetStream, a fresh migrated database with
// a seeded catalog, the edge started as cmd/edge starts it (app.App), N processor
// instances started exactly as cmd/processor starts them (app.App, each with
// its own NATS connection, database pool and metrics registry), and a
// PURCHASES consumer collecting what downstream systems would see.

// Seeded catalog. The organization has its own platform agreement and the
// creator an agreement with the organization, so every purchase exercises
// both non-default rates and records both agreement ids.
const (
	price          = 2999
	currency       = "usd"
	platformBps    = 1500
	organizationBp = 2000
	creatorID      = "creator_e2e"
	otherCreator   = "creator_other"
	customerPrefix = "user_"
)

var seedFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// catalog holds the seeded ids.
type catalog struct {
	content, org           uuid.UUID // the content bought in every good checkout
	otherContent, otherOrg uuid.UUID // content of another organization
	platformAgreement      uuid.UUID
	creatorAgreement       uuid.UUID
}

// testConsumer is the processor's durable consumer with a schedule short
// enough for tests: redelivery after 2s without an ack, fast retries, and a
// delivery budget large enough that faults never exhaust it.
func testConsumer() streams.ConsumerConfig {
	return streams.ConsumerConfig{
		AckWait: 2 * time.Second, MaxAckPending: 64, MaxDeliver: 30,
		Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
	}
}

// stack is one running paystream.
type stack struct {
	t      *testing.T
	nats   *testenv.NATS
	js     jetstream.JetStream // the test's own client
	db     *bun.DB             // the test's own pool, for assertions
	dsn    string
	dbName string
	cat    catalog
	secret string
	edge   string // base URL of the edge's public listener
	edgeAd string // base URL of the edge's admin listener (/metrics)
	log    *slog.Logger
	got    *collector

	mu    sync.Mutex
	procs []*instance
}

// newStack starts everything but the processors.
func newStack(t *testing.T) *stack {
	t.Helper()
	n := testenv.StartNATS(t)
	bdb, dsn := testenv.DB(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, nats: n, js: n.JetStream(t), db: bdb, dsn: dsn, dbName: strings.TrimPrefix(u.Path, "/"),
		secret: stripefixture.NewSecret(), log: pipelinetest.Logger(t)}
	s.cat = seedCatalog(t, bdb)

	s.edge, s.edgeAd = s.startEdge()
	s.got = subscribePurchases(t, s.js)
	return s
}

// startEdge starts the edge exactly as cmd/edge does, through app.App with
// its own NATS connection, on free ports, and returns the base URLs of its
// public and admin listeners; it stops at cleanup.
func (s *stack) startEdge() (public, admin string) {
	t := s.t
	t.Helper()
	cfg, err := config.ParseEdge(config.MapEnv(map[string]string{
		"NATS_URL": s.nats.URL(), config.SecretVar: s.secret, "EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"EDGE_RATE_LIMIT": "0",
	}), []string{config.SecretVar})
	if err != nil {
		t.Fatal(err)
	}
	addrs := s.runApp("edge", app.Edge(cfg))
	return "http://" + addrs.Edge.Public, "http://" + addrs.Edge.Admin
}

// runApp runs services through app.App until cleanup, as the binaries do,
// and returns their bound addresses once every one of them listens; name
// labels its logs and failures, and any error on stop fails the test.
func (s *stack) runApp(name string, services ...app.Service) app.Addrs {
	s.t.Helper()
	return pipelinetest.Start(s.t, name, s.log.With("service", name), services, nil).Addrs
}

func seedCatalog(t *testing.T, bdb *bun.DB) catalog {
	t.Helper()
	c := catalog{content: uuid.New(), org: uuid.New(), otherContent: uuid.New(), otherOrg: uuid.New(),
		platformAgreement: uuid.New(), creatorAgreement: uuid.New()}
	rows := []any{
		&model.Content{ID: c.content, CreatorID: creatorID, OrganizationID: c.org, PriceCents: price, Currency: currency, Visibility: "public"},
		&model.Content{ID: c.otherContent, CreatorID: otherCreator, OrganizationID: c.otherOrg, PriceCents: price, Currency: currency, Visibility: "public"},
		&model.OrganizationPlatformAgreement{ID: c.platformAgreement, OrganizationID: c.org, PlatformFeePercentage: platformBps, EffectiveFrom: seedFrom},
		&model.CreatorOrganizationAgreement{ID: c.creatorAgreement, CreatorID: creatorID, OrganizationID: c.org,
			OrganizationFeePercentage: organizationBp, EffectiveFrom: seedFrom},
	}
	for _, r := range rows {
		if _, err := bdb.NewInsert().Model(r).Exec(context.Background()); err != nil {
			t.Fatalf("seed %T: %v", r, err)
		}
	}
	return c
}

// expectedSplit is the split the seeded agreements give a purchase of price.
func expectedSplit(t *testing.T) split.Split {
	t.Helper()
	s, err := split.Compute(price, split.Terms{PlatformBps: platformBps, OrganizationBps: organizationBp})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// instance is one processor process; its parts are set once it runs.
type instance struct {
	name  string
	nc    *nats.Conn
	db    *bun.DB
	reg   *prometheus.Registry
	admin string // base URL of its admin listener (/readyz)
	run   *pipelinetest.Running
}

// stop shuts the instance down gracefully, as SIGTERM does, and returns
// what app.App.Run returned; later calls return the same.
func (i *instance) stop(within time.Duration) error { return i.run.Stop(within) }

// wrapFunc lets a test put a handler around the real one (fault injection).
type wrapFunc func(inst *instance, h handling.Handler) handling.Handler

// procOpts shapes one processor instance.
type procOpts struct {
	workers  int
	wrap     wrapFunc
	domain   *processorconfig.Domain // nil: the relay only, polling every 20ms
	dsn      string                  // database URL; empty: the stack's
	consumer *streams.ConsumerConfig // nil: testConsumer()
	tune     func(*processor.Config) // after the suite's PollInterval/AckTimeout
}

// startProcessor starts one processor instance exactly as cmd/processor
// does, through app.App: schema check, its own NATS connection
// (streams.Connect: reconnects forever), stream ensuring, its own pool and
// registry, the admin server on a free port, the pipeline's domain (purchase
// handler + outbox relay [+ periodic reconcile]) under the one supervisor,
// and the ordered drain on stop. Only the settings differ: a short consumer
// schedule and timeouts. It returns once the instance consumes, and stops it
// at cleanup.
func (s *stack) startProcessor(o procOpts) *instance {
	t := s.t
	t.Helper()
	s.mu.Lock()
	name := fmt.Sprintf("p%d", len(s.procs)+1)
	s.mu.Unlock()
	if o.workers == 0 {
		o.workers = 4
	}
	if o.dsn == "" {
		o.dsn = s.dsn
	}
	cfg, err := processorconfig.Parse(config.MapEnv(map[string]string{
		"NATS_URL": s.nats.URL(), "DATABASE_URL": o.dsn, "ADMIN_ADDR": "127.0.0.1:0", "DB_MAX_CONNS": "6",
		"PROCESSOR_WORKERS": strconv.Itoa(o.workers),
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Consumer = testConsumer()
	if o.consumer != nil {
		cfg.Consumer = *o.consumer
	}
	cfg.HandleTimeout, cfg.ShutdownTimeout = 5*time.Second, 5*time.Second
	cfg.Domain = processorconfig.Domain{Relay: outbox.RelayConfig{PollInterval: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond}}
	if o.domain != nil {
		cfg.Domain = *o.domain
	}
	inst := &instance{name: name}
	services := processorservice.New(cfg,
		processorservice.WithTuning(func(c *processor.Config) {
			c.PollInterval, c.AckTimeout = 100*time.Millisecond, 2*time.Second
			if o.tune != nil {
				o.tune(c)
			}
		}),
		processorservice.WithHandler(func(r processorservice.Runtime, h handling.Handler) handling.Handler {
			inst.nc, inst.db, inst.reg = r.Conn, r.DB, r.Registry
			if o.wrap != nil {
				h = o.wrap(inst, h)
			}
			return h
		}))
	inst.run = pipelinetest.Start(t, "processor "+name, s.log.With("instance", name), services, func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, processor.ErrShutdownTimeout) {
			t.Logf("processor %s stopped with: %v", name, err)
		}
	}, app.WithClientName("paystream-"+name))
	inst.admin = "http://" + inst.run.Addrs.ProcessorAdmin[0]
	s.mu.Lock()
	s.procs = append(s.procs, inst)
	s.mu.Unlock()
	return inst
}

// scrape reads the value of one series from the /metrics of the admin
// listener at base (0 if absent), as Prometheus would.
func scrape(t *testing.T, base, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", base, err)
	}
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// ready reports whether the admin listener at base answers /readyz with 200.
func ready(t *testing.T, base string) bool {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("readyz %s: %v", base, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// post signs body with the endpoint secret and posts it to the edge.
func (s *stack) post(body []byte) int {
	s.t.Helper()
	code, err := pipelinetest.Webhooks{URL: s.edge, Secret: s.secret}.Post(body)
	if err != nil {
		s.t.Fatal(err)
	}
	return code
}

// mustPost posts body and fails the test unless the edge answers 200.
func (s *stack) mustPost(body []byte) {
	s.t.Helper()
	if code := s.post(body); code != http.StatusOK {
		s.t.Fatalf("edge answered %d, want 200", code)
	}
}

// checkout builds a checkout.session.* event for the seeded content; edit
// may change the session (metadata defects, another amount).
func (s *stack) checkout(typ, eventID, session string, at time.Time, edit func(*stripefixture.Checkout)) []byte {
	s.t.Helper()
	c := stripefixture.Checkout{
		SessionID: session, PaymentIntentID: piOf(session), AmountTotal: price, Currency: currency,
		Metadata: stripefixture.PurchaseMetadata(customerPrefix+session, s.cat.content.String(), s.cat.org.String(), price, currency),
	}
	if edit != nil {
		edit(&c)
	}
	body, err := stripefixture.CheckoutEvent(typ, stripefixture.Meta{EventID: eventID, Created: at}, c)
	if err != nil {
		s.t.Fatal(err)
	}
	return body
}

// fullRefund builds charge.refunded refunding the whole purchase of session.
func (s *stack) fullRefund(eventID, session string, at time.Time) []byte {
	s.t.Helper()
	body, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: eventID, Created: at}, stripefixture.Charge{
		ChargeID: "ch_" + session, PaymentIntentID: piOf(session), Amount: price, Currency: currency,
		Refunds: []stripefixture.Refund{{ID: "re_" + session, Amount: price}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return body
}

func piOf(session string) string { return "pi_" + session }

// publish stores body on STRIPE_EVENTS as the edge would, but with msgID as
// Nats-Msg-Id, so tests can get past the broker's dedup window on purpose.
func (s *stack) publish(typ, eventID, msgID string, body []byte) {
	s.t.Helper()
	m, err := streams.Msg(stripeevent.Event{ID: eventID, Type: typ, APIVersion: stripefixture.APIVersion,
		Created: time.Now(), Endpoint: streams.DefaultEndpoint, ReceivedAt: time.Now(), RequestID: "test-" + msgID, Payload: body})
	if err != nil {
		s.t.Fatal(err)
	}
	m.Header.Set(streams.HeaderMsgID, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := streams.PublishMsg(ctx, s.js, m); err != nil {
		s.t.Fatal(err)
	}
}

// run runs f as the subtest name, with the stack's helpers failing that
// subtest. Processors started before keep running across subtests.
func (s *stack) run(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		prev := s.t
		s.t = t
		defer func() { s.t = prev }()
		f(t)
	})
}

// storedMsg is a message as STRIPE_EVENTS stores it.
type storedMsg struct {
	Header nats.Header
	Data   []byte
}

// eventually is testenv.Eventually.
var eventually = testenv.Eventually

// count counts rows of table matching where (pipelinetest.Count).
func (s *stack) count(table, where string, args ...any) int {
	s.t.Helper()
	return pipelinetest.Count(s.t, s.db, table, where, args...)
}

// purchase returns the purchase of session.
func (s *stack) purchase(session string) model.Purchase {
	s.t.Helper()
	var p model.Purchase
	if err := s.db.NewSelect().Model(&p).Where("stripe_checkout_session_id = ?", session).Scan(context.Background()); err != nil {
		s.t.Fatalf("purchase of %s: %v", session, err)
	}
	return p
}

// access returns the access row of session's customer to the content.
func (s *stack) access(session string) model.ContentAccess {
	s.t.Helper()
	var a model.ContentAccess
	if err := s.db.NewSelect().Model(&a).Where("user_id = ?", customerPrefix+session).Where("content_id = ?", s.cat.content).
		Scan(context.Background()); err != nil {
		s.t.Fatalf("access of %s: %v", session, err)
	}
	return a
}

// settled reports whether every message stored on STRIPE_EVENTS has been
// acked or terminated by the processor group and every outbox row relayed.
func (s *stack) settled() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return false
	}
	c, err := s.js.Consumer(ctx, streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		return false
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return false
	}
	si := st.CachedInfo()
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.AckFloor.Stream < si.State.LastSeq {
		return false
	}
	n, err := s.db.NewSelect().Table("outbox").Where("published_at IS NULL").Count(ctx)
	return err == nil && n == 0
}

// waitSettled waits until settled and the PURCHASES collector caught up.
func (s *stack) waitSettled(within time.Duration) {
	s.t.Helper()
	eventually(s.t, within, "the pipeline to settle (all events acked, outbox relayed)", s.settled)
	eventually(s.t, within, "the PURCHASES consumer to catch up", func() bool { return s.got.caughtUp(s.js) })
}

// subjectCounts returns the number of messages per subject on stream.
func (s *stack) subjectCounts(stream, filter string) map[string]uint64 {
	s.t.Helper()
	ctx := context.Background()
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		s.t.Fatal(err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

// dlq lists the dead letters.
func (s *stack) dlq() []streams.DeadLetterMsg {
	s.t.Helper()
	l, err := streams.NewDLQ(s.js).List(context.Background(), 0, 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	return l
}

// metric sums the counter (or gauge) name with exactly labels over every
// processor instance's registry.
func (s *stack) metric(name string, labels map[string]string) float64 {
	s.t.Helper()
	s.mu.Lock()
	procs := append([]*instance(nil), s.procs...)
	s.mu.Unlock()
	var sum float64
	for _, p := range procs {
		sum += metricOf(s.t, p.reg, name, labels)
	}
	return sum
}

// histogramCount sums the sample count of histogram name over the instances.
func (s *stack) histogramCount(name string) uint64 {
	s.t.Helper()
	s.mu.Lock()
	procs := append([]*instance(nil), s.procs...)
	s.mu.Unlock()
	var n uint64
	for _, p := range procs {
		mfs, err := p.reg.Gather()
		if err != nil {
			s.t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// metricOf is testenv.Metric.
func metricOf(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return testenv.Metric(t, reg, name, labels)
}

// events is the label set of paystream_processor_events_total.
func events(typ, outcome string) map[string]string {
	return map[string]string{"type": typ, "outcome": outcome}
}

const (
	eventsTotal   = "paystream_processor_events_total"
	deadLetters   = "paystream_processor_dead_letters_total"
	endToEnd      = "paystream_processor_end_to_end_seconds"
	typeCompleted = "checkout.session.completed"
	typeRefunded  = "charge.refunded"
)

// collector is a downstream consumer of PURCHASES, through the typed API.
// Delivery is at least once (an ack lost in a broker restart brings the
// message back), so, as the consumer contract asks, it deduplicates on the
// CloudEvents id; the stream's own message count is checked separately.
type collector struct {
	durable    string
	mu         sync.Mutex
	evs        []streams.PurchaseEvent
	seen       map[string]bool
	deliveries int
}

func subscribePurchases(t *testing.T, js jetstream.JetStream) *collector {
	t.Helper()
	c := &collector{durable: "e2e-collector", seen: map[string]bool{}}
	cc, err := streams.SubscribePurchases(context.Background(), js, c.durable, func(_ context.Context, ev streams.PurchaseEvent) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.deliveries++
		if !c.seen[ev.ID] {
			c.seen[ev.ID] = true
			c.evs = append(c.evs, ev)
		}
		return nil
	}, streams.WithConsumerConfig(func(cc *jetstream.ConsumerConfig) {
		// A lost ack comes back after 2s instead of the default 30s.
		cc.AckWait = 2 * time.Second
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// caughtUp reports whether the collector's consumer has nothing left to get.
func (c *collector) caughtUp(js jetstream.JetStream) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, streams.PurchasesStream, c.durable)
	if err != nil {
		return false
	}
	info, err := cons.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// of returns the collected events of kind for session.
func (c *collector) of(kind, session string) []streams.PurchaseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []streams.PurchaseEvent
	for _, ev := range c.evs {
		if ev.Type == streams.PurchaseEventType(kind) && ev.Data.Stripe.CheckoutSessionID == session {
			out = append(out, ev)
		}
	}
	return out
}

// all returns a copy of everything collected.
func (c *collector) all() []streams.PurchaseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]streams.PurchaseEvent(nil), c.evs...)
}

// describeLetters summarizes dead letters for a failure message (their
// bodies would drown it).
func describeLetters(dl []streams.DeadLetterMsg) string {
	parts := make([]string, len(dl))
	for i, l := range dl {
		parts[i] = fmt.Sprintf("%s %s (%s after %d deliveries: %s)", l.EventType, l.EventID, l.Reason, l.Deliveries, l.Error)
	}
	return strings.Join(parts, "; ")
}
