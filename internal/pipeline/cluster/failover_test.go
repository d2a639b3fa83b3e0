// Package cluster_test runs the whole pipeline on a three-node JetStream
// cluster and kills the leaders of its streams and consumer under traffic.
// It is its own package so it runs in parallel with the single-node suite.
package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/pipeline/pipelinetest"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

const (
	price         = 1999
	currency      = "usd"
	typeCompleted = "checkout.session.completed"
)

// connect returns a JetStream client connected to every node.
func connect(t *testing.T, cl *testenv.Cluster, name string, log *slog.Logger) jetstream.JetStream {
	t.Helper()
	nc, err := streams.Connect(cl.URLs(), name, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := streams.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// startStack runs the edge and two processor instances as cmd/edge and
// cmd/processor start them (app.App: each instance with its own NATS
// connection, pool and registry), connected to all three nodes, streams at
// R3; it returns the edge's base URL and stops everything at cleanup.
func startStack(t *testing.T, cl *testenv.Cluster, dsn, secret string, log *slog.Logger) string {
	t.Helper()
	env := config.MapEnv(map[string]string{
		"NATS_URL": cl.URLs(), "DATABASE_URL": dsn, config.SecretVar: secret, "STREAM_REPLICAS": "3",
		"EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "EDGE_RATE_LIMIT": "0", "EDGE_PUBLISH_TIMEOUT": "2s",
		"DB_MAX_CONNS": "4", "PROCESSOR_WORKERS": "4",
		"PROCESSOR_ACK_WAIT": "2s", "PROCESSOR_MAX_ACK_PENDING": "64", "PROCESSOR_MAX_DELIVER": "30",
		"PROCESSOR_BACKOFF": "100ms,200ms,500ms",
	})
	ecfg, err := config.ParseEdge(env, []string{config.SecretVar})
	if err != nil {
		t.Fatal(err)
	}
	pcfg, err := processorconfig.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.HandleTimeout, pcfg.ShutdownTimeout = 5*time.Second, 5*time.Second // as the single-node suite
	pcfg.Domain = processorconfig.Domain{Relay: outbox.RelayConfig{PollInterval: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond}}
	services := append([]app.Service{app.Edge(ecfg)}, processorservice.New(pcfg, processorservice.WithInstances(2),
		processorservice.WithTuning(func(c *processor.Config) { c.PollInterval, c.AckTimeout = 500*time.Millisecond, 2*time.Second }))...)
	r := pipelinetest.Start(t, "stack", log, services, func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, processor.ErrShutdownTimeout) {
			t.Logf("stack stopped with: %v", err)
		}
	})
	return "http://" + r.Addrs.Edge.Public
}

// stripe plays Stripe: it sends each event until the edge answers 200,
// retrying quickly (Stripe's own schedule is minutes), then sends it once
// more as a duplicate, and keeps count of the refusals.
type stripe struct {
	t        *testing.T
	webhooks pipelinetest.Webhooks

	mu          sync.Mutex
	refused     int           // non-200 answers and failed requests
	longestGap  time.Duration // longest time one event waited for its 200
	sessions    []string
	unavailable map[int]int // status → count
}

// deliver sends body until it is accepted; it fails the test on an answer
// Stripe would not retry.
func (s *stripe) deliver(ctx context.Context, body []byte) bool {
	first := time.Now()
	for {
		code, err := s.webhooks.Post(body)
		if err == nil && code == http.StatusOK {
			s.mu.Lock()
			s.longestGap = max(s.longestGap, time.Since(first))
			s.mu.Unlock()
			return true
		}
		if err == nil && code != http.StatusServiceUnavailable {
			s.t.Errorf("edge answered %d; only 200 or 503 are acceptable during a failover", code)
			return false
		}
		s.mu.Lock()
		s.refused++
		s.unavailable[code]++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaderOf returns the server name leading stream (consumer empty) or the
// consumer.
func leaderOf(js jetstream.JetStream, stream, consumer string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if consumer == "" {
		s, err := js.Stream(ctx, stream)
		if err != nil || s.CachedInfo().Cluster == nil {
			return ""
		}
		return s.CachedInfo().Cluster.Leader
	}
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil || c.CachedInfo().Cluster == nil {
		return ""
	}
	return c.CachedInfo().Cluster.Leader
}

// The leader of STRIPE_EVENTS, then of the processor consumer, then of
// PURCHASES is killed and restarted while checkouts and their duplicates
// keep arriving. The edge answers only 200 or 503, Stripe's retries get
// through, and every accepted event becomes exactly one purchase and one
// purchases.completed; nothing is dead-lettered.
func TestClusterLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster failover: not in -short")
	}
	log := pipelinetest.Logger(t)
	cl := testenv.StartCluster(t)
	bdb, dsn := testenv.DB(t)
	content, org := uuid.New(), uuid.New()
	if _, err := bdb.NewInsert().Model(&model.Content{ID: content, CreatorID: "creator_cluster", OrganizationID: org,
		PriceCents: price, Currency: currency, Visibility: "public"}).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}

	js := connect(t, cl, "paystream-test", log)
	sc := streams.DefaultConfig()
	sc.Replicas = 3
	// Each attempt bounded, retried, as the services do (internal/app):
	// on a loaded machine a JetStream API request made while the fresh
	// cluster re-elects its meta leader can go unanswered, and one attempt
	// would then spend the whole budget waiting for it.
	testenv.Eventually(t, 60*time.Second, "the streams to be created", func() bool {
		ectx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := streams.Ensure(ectx, js, sc)
		if err != nil {
			t.Logf("ensure streams: %v (retrying)", err)
		}
		return err == nil
	})

	secret := stripefixture.NewSecret()
	edgeURL := startStack(t, cl, dsn, secret, log)
	testenv.Eventually(t, 30*time.Second, "the processor consumer to have a leader", func() bool {
		return leaderOf(js, streams.EventsStream, streams.ProcessorConsumer) != ""
	})

	st := &stripe{t: t, webhooks: pipelinetest.Webhooks{URL: edgeURL, Secret: secret, Client: &http.Client{Timeout: 10 * time.Second}},
		unavailable: map[int]int{}}
	ctx, stopTraffic := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	traffic.Go(func() {
		at := time.Now().Add(-time.Minute)
		for i := 0; ctx.Err() == nil; i++ {
			session := fmt.Sprintf("cs_cluster_%04d", i)
			id := fmt.Sprintf("evt_cluster_%04d", i)
			body, err := stripefixture.CheckoutEvent(typeCompleted, stripefixture.Meta{EventID: id, Created: at},
				stripefixture.Checkout{SessionID: session, PaymentIntentID: "pi_" + session, AmountTotal: price, Currency: currency,
					Metadata: stripefixture.PurchaseMetadata("user_"+session, content.String(), org.String(), price, currency)})
			if err != nil {
				t.Error(err)
				return
			}
			// Events in flight when the test stops are finished: the
			// assertions hold for every event the edge accepted.
			if !st.deliver(context.WithoutCancel(ctx), body) {
				return
			}
			st.mu.Lock()
			st.sessions = append(st.sessions, session)
			st.mu.Unlock()
			st.deliver(context.WithoutCancel(ctx), body) // Stripe-style duplicate
			time.Sleep(30 * time.Millisecond)
		}
	})

	for _, target := range []struct{ name, stream, consumer string }{
		{"STRIPE_EVENTS", streams.EventsStream, ""},
		{"consumer processor", streams.EventsStream, streams.ProcessorConsumer},
		{"PURCHASES", streams.PurchasesStream, ""},
	} {
		time.Sleep(time.Second) // traffic flows before the kill
		leader := leaderOf(js, target.stream, target.consumer)
		node := cl.Node(leader)
		if node == nil {
			t.Fatalf("no leader for %s (got %q)", target.name, leader)
		}
		killed := time.Now()
		node.Shutdown()
		testenv.Eventually(t, 30*time.Second, "a new leader of "+target.name, func() bool {
			l := leaderOf(js, target.stream, target.consumer)
			return l != "" && l != leader
		})
		t.Logf("killed %s, leader of %s: new leader after %s", leader, target.name, time.Since(killed).Round(10*time.Millisecond))
		time.Sleep(time.Second) // traffic on two nodes
		node.Start()
		cl.WaitHealthy(60 * time.Second)
	}
	time.Sleep(time.Second)
	stopTraffic()
	traffic.Wait()

	st.mu.Lock()
	sessions := append([]string(nil), st.sessions...)
	refused, gap, codes := st.refused, st.longestGap, fmt.Sprint(st.unavailable)
	st.mu.Unlock()
	t.Logf("%d checkouts accepted (each sent twice); %d refused attempts %s, longest wait for a 200: %s",
		len(sessions), refused, codes, gap.Round(10*time.Millisecond))
	if len(sessions) < 10 {
		t.Fatalf("only %d checkouts got through", len(sessions))
	}

	testenv.Eventually(t, 90*time.Second, "every accepted event applied and relayed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, streams.EventsStream, streams.ProcessorConsumer)
		if err != nil {
			return false
		}
		ci := c.CachedInfo()
		return ci.NumPending == 0 && ci.NumAckPending == 0 &&
			pipelinetest.Count(t, bdb, "outbox", "published_at IS NULL") == 0 &&
			pipelinetest.Count(t, bdb, "purchases", "TRUE") >= len(sessions)
	})

	if n := pipelinetest.Count(t, bdb, "purchases", "TRUE"); n != len(sessions) {
		t.Errorf("%d purchases, want %d (one per accepted checkout)", n, len(sessions))
	}
	if n := pipelinetest.Count(t, bdb, "stripe_events", "TRUE"); n != len(sessions) {
		t.Errorf("%d stripe_events rows, want %d", n, len(sessions))
	}
	var missing []string
	for _, s := range sessions {
		n, err := bdb.NewSelect().Model((*model.Purchase)(nil)).Where("stripe_checkout_session_id = ?", s).Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missing = append(missing, fmt.Sprintf("%s:%d", s, n))
		}
	}
	if len(missing) > 0 {
		t.Errorf("sessions without exactly one purchase: %s", strings.Join(missing, " "))
	}
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := js.Stream(ictx, streams.PurchasesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ps.Info(ictx, jetstream.WithSubjectFilter("purchases.>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects["purchases.completed"]; got != uint64(len(sessions)) || len(info.State.Subjects) != 1 {
		t.Errorf("PURCHASES subjects %v, want %d purchases.completed", info.State.Subjects, len(sessions))
	}
	depth, err := streams.NewDLQ(js).Depth(ictx)
	if err != nil {
		t.Fatal(err)
	}
	if depth != 0 {
		t.Errorf("%d dead letters, want none", depth)
	}
	if errors.Is(ctx.Err(), context.Canceled) && refused == 0 {
		t.Log("no refused request: every election finished within the edge's publish timeout")
	}
}
