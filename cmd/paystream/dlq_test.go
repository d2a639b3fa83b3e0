package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// startProcessor runs the real processor runtime with the real purchase
// handler, as cmd/processor wires them, with a fast retry schedule. It stops
// at cleanup.
func startProcessor(t *testing.T, js jetstream.JetStream, bdb *bun.DB) {
	t.Helper()
	h, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), discard)
	if err != nil {
		t.Fatal(err)
	}
	startProcessorWith(t, js, h)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// startProcessorWith runs the real processor runtime around h with a fast
// retry schedule. It stops when the returned function is called, or at
// cleanup.
func startProcessorWith(t *testing.T, js jetstream.JetStream, h handling.Handler) (stop func()) {
	t.Helper()
	p, err := processor.New(js, h, processor.Config{
		Consumer: streams.ConsumerConfig{
			AckWait: 2 * time.Second, MaxAckPending: 16, MaxDeliver: 4,
			Backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		},
		Workers: 2, HandleTimeout: time.Second, ShutdownTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond,
	}, processor.NewMetrics(nil), discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("processor: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("processor did not stop 15s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// publishCheckout stores a demo checkout.session.completed on STRIPE_EVENTS
// the way the edge does.
func publishCheckout(t *testing.T, js jetstream.JetStream, eventID, session string) uint64 {
	t.Helper()
	return publishBody(t, js, eventID, checkoutBody(t, eventID, session))
}

// checkoutBody is a demo checkout.session.completed for session.
func checkoutBody(t *testing.T, eventID, session string) []byte {
	t.Helper()
	body, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: eventID, Created: time.Now(), APIVersion: stripefixture.APIVersion},
		stripefixture.Checkout{
			SessionID: session, PaymentIntentID: "pi_" + session, AmountTotal: demo.PriceCents, Currency: demo.Currency,
			Metadata: stripefixture.PurchaseMetadata(demo.CustomerID, demo.ContentID, demo.OrganizationID, demo.PriceCents, demo.Currency),
		})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// publishBody stores the checkout.session.completed body on STRIPE_EVENTS
// the way the edge does.
func publishBody(t *testing.T, js jetstream.JetStream, eventID string, body []byte) uint64 {
	t.Helper()
	now := time.Now()
	res, err := streams.NewPublisher(js).Publish(context.Background(), stripeevent.Event{
		ID: eventID, Type: "checkout.session.completed", APIVersion: stripefixture.APIVersion, Created: now,
		Endpoint: streams.DefaultEndpoint, ReceivedAt: now, RequestID: "req_" + eventID, Payload: body})
	if err != nil {
		t.Fatal(err)
	}
	return res.Sequence
}

func countRows(t *testing.T, bdb *bun.DB, table, where string, args ...any) int {
	t.Helper()
	n, err := bdb.NewSelect().Table(table).Where(where, args...).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// ackedThrough reports whether the processor consumer has acknowledged (or
// terminated) every STRIPE_EVENTS message up to seq.
func ackedThrough(t *testing.T, js jetstream.JetStream, seq uint64) bool {
	t.Helper()
	c, err := js.Consumer(context.Background(), streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		return false // not created yet
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream >= seq && info.NumAckPending == 0
}

func dlqList(t *testing.T, env config.Getenv) []letterJSON {
	t.Helper()
	out, err := runCLI(t, env, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	var letters []letterJSON
	if err := json.Unmarshal([]byte(out), &letters); err != nil {
		t.Fatalf("decode dlq list: %v\n%s", err, out)
	}
	return letters
}

// The DLQ test: a checkout for content that does not exist yet is
// dead-lettered by the real processor; once the content exists, replaying it
// makes exactly one purchase, and replaying it again changes nothing.
func TestDLQReplayOfAFixedPoisonMessageMakesOnePurchase(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	bdb, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{"NATS_URL": n.URL(), "DATABASE_URL": dsn})
	startProcessor(t, js, bdb)

	const eventID, session = "evt_poison_1", "cs_test_poison_1"
	publishCheckout(t, js, eventID, session)
	d := streams.NewDLQ(js)
	testenv.Eventually(t, 15*time.Second, "the checkout to be dead-lettered", func() bool {
		depth, err := d.Depth(context.Background())
		return err == nil && depth == 1
	})
	letters := dlqList(t, env)
	if len(letters) != 1 {
		t.Fatalf("dlq list = %+v, want one letter", letters)
	}
	l := letters[0]
	if l.EventID != eventID || l.EventType != "checkout.session.completed" || l.Reason != "unknown_content" ||
		l.Deliveries != 1 || l.OriginalSubject != "stripe.events.default.checkout.session.completed" || l.Error == "" {
		t.Errorf("dead letter = %+v", l)
	}
	if got := countRows(t, bdb, "purchases", "stripe_checkout_session_id = ?", session); got != 0 {
		t.Fatalf("%d purchases before the fix", got)
	}
	seq := strconv.FormatUint(l.Seq, 10)

	// A dry run publishes nothing and keeps the letter.
	before := streamLastSeq(t, js, streams.EventsStream)
	if out, err := runCLI(t, env, "dlq", "replay", seq, "--dry-run"); err != nil || !strings.Contains(out, "would replay dead letter "+seq) {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if after := streamLastSeq(t, js, streams.EventsStream); after != before {
		t.Fatalf("dry run published: STRIPE_EVENTS last seq %d → %d", before, after)
	}

	// The fix: the catalog catches up.
	if out, err := runCLI(t, env, "seed"); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}

	// Replay, keeping the letter so it can be replayed once more.
	out, err := runCLI(t, env, "dlq", "replay", seq, "--keep")
	if err != nil || !strings.Contains(out, "replayed dead letter "+seq) || strings.Contains(out, "removed") {
		t.Fatalf("replay --keep: %v\n%s", err, out)
	}
	replayed := streamLastSeq(t, js, streams.EventsStream)
	testenv.Eventually(t, 15*time.Second, "the replay to be applied", func() bool { return ackedThrough(t, js, replayed) })
	if got := countRows(t, bdb, "purchases", "stripe_checkout_session_id = ?", session); got != 1 {
		t.Fatalf("%d purchases after the replay, want 1", got)
	}

	// Replaying again (a second later, so the broker does not dedup it) is
	// delivered, changes nothing, and removes the letter.
	time.Sleep(1100 * time.Millisecond)
	out, err = runCLI(t, env, "dlq", "replay", seq)
	if err != nil || !strings.Contains(out, "removed dead letter "+seq) {
		t.Fatalf("second replay: %v\n%s", err, out)
	}
	again := streamLastSeq(t, js, streams.EventsStream)
	if again <= replayed {
		t.Fatalf("second replay was not stored (STRIPE_EVENTS last seq %d, first replay %d)", again, replayed)
	}
	testenv.Eventually(t, 15*time.Second, "the second replay to be handled", func() bool { return ackedThrough(t, js, again) })
	if got := countRows(t, bdb, "purchases", "stripe_checkout_session_id = ?", session); got != 1 {
		t.Errorf("%d purchases after the second replay, want still 1", got)
	}
	if got := countRows(t, bdb, "stripe_events", "event_id = ?", eventID); got != 1 {
		t.Errorf("%d stripe_events rows for %s, want 1", got, eventID)
	}
	if depth, err := d.Depth(context.Background()); err != nil || depth != 0 {
		t.Errorf("DLQ depth after the replay = %d, %v; want 0 (the replayed letter is removed)", depth, err)
	}
	var p model.Purchase
	if err := bdb.NewSelect().Model(&p).Where("stripe_checkout_session_id = ?", session).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.PlatformFeeCents != 300 || p.OrganizationFeeCents != 135 || p.CreatorPayoutCents != 2564 {
		t.Errorf("purchase split %d/%d/%d, want the seeded 300/135/2564", p.PlatformFeeCents, p.OrganizationFeeCents, p.CreatorPayoutCents)
	}

	// The letter is gone: replaying it names the problem.
	if out, err := runCLI(t, env, "dlq", "replay", seq); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("replay of a removed letter = %v, want ErrDeadLetterNotFound\n%s", err, out)
	}
}

// A paid checkout whose buyer typed `Jo \u0000 "Q" \\ Ray` as a name was
// dead-lettered by the processor before its payload was stored as sent (bun's
// jsonb literal turned the escaped backslash into a \u0000 escape that jsonb
// refuses). Such a letter, left behind by the old path, becomes one purchase
// with the buyer's access when replayed to the fixed processor.
func TestDLQReplayOfACheckoutTheOldPayloadPathRefused(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	bdb, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{"NATS_URL": n.URL(), "DATABASE_URL": dsn})
	if out, err := runCLI(t, env, "seed"); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	fixed, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), discard)
	if err != nil {
		t.Fatal(err)
	}
	stopOld := startProcessorWith(t, js, oldPayloadPath{db: bdb, next: fixed})

	const eventID, session = "evt_escaped_name_1", "cs_test_escaped_name_1"
	body := checkoutBody(t, eventID, session)
	if !bytes.Contains(body, []byte(`"Jenny Rosen"`)) {
		t.Fatal("fixture has no customer name")
	}
	body = bytes.Replace(body, []byte(`"Jenny Rosen"`), []byte(`"Jo \\u0000 \"Q\" \\\\ Ray"`), 1)
	publishBody(t, js, eventID, body)
	d := streams.NewDLQ(js)
	testenv.Eventually(t, 15*time.Second, "the checkout to be dead-lettered by the old path", func() bool {
		depth, err := d.Depth(context.Background())
		return err == nil && depth == 1
	})
	stopOld()
	letters := dlqList(t, env)
	if len(letters) != 1 || letters[0].EventID != eventID || letters[0].Reason != "invalid_payload" {
		t.Fatalf("dead letters = %+v, want %s as invalid_payload", letters, eventID)
	}
	if got := countRows(t, bdb, "purchases", "stripe_checkout_session_id = ?", session); got != 0 {
		t.Fatalf("%d purchases on the old path", got)
	}

	startProcessorWith(t, js, fixed)
	seq := strconv.FormatUint(letters[0].Seq, 10)
	if out, err := runCLI(t, env, "dlq", "replay", seq); err != nil || !strings.Contains(out, "removed dead letter "+seq) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	replayed := streamLastSeq(t, js, streams.EventsStream)
	testenv.Eventually(t, 15*time.Second, "the replay to be applied", func() bool { return ackedThrough(t, js, replayed) })
	if got := countRows(t, bdb, "purchases", "stripe_checkout_session_id = ? AND status = 'completed'", session); got != 1 {
		t.Fatalf("%d completed purchases after the replay, want 1", got)
	}
	if got := countRows(t, bdb, "content_access", "user_id = ? AND revoked_at IS NULL", demo.CustomerID); got != 1 {
		t.Errorf("%d access rows of the buyer, want 1", got)
	}
	var same bool
	if err := bdb.DB.QueryRowContext(context.Background(),
		`SELECT payload = $1::jsonb FROM stripe_events WHERE event_id = $2`, string(body), eventID).Scan(&same); err != nil || !same {
		t.Errorf("stripe_events.payload is not the body as sent (%v)", err)
	}
	if depth, err := d.Depth(context.Background()); err != nil || depth != 0 {
		t.Errorf("DLQ depth after the replay = %d, %v; want 0", depth, err)
	}
}

// oldPayloadPath is the processor as it was before payloads were stored as
// sent: it wrote stripe_events.payload through bun's jsonb formatting, and
// classified the database's refusal (SQLSTATE class 22) as invalid_payload.
// It tries that write first, rolled back, and dead-letters what it refused;
// anything else goes to next.
type oldPayloadPath struct {
	db   *bun.DB
	next handling.Handler
}

func (o oldPayloadPath) Handle(ctx context.Context, ev stripeevent.Event) (handling.Outcome, error) {
	type row struct {
		bun.BaseModel `bun:"table:stripe_events"`
		Payload       json.RawMessage `bun:"payload,type:jsonb"`
	}
	err := o.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS payload_probe (payload jsonb) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&row{Payload: ev.Payload}).ModelTableExpr("payload_probe").Exec(ctx); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if state := db.SQLState(err); len(state) == 5 && state[:2] == "22" {
		return "", fault.Wrap(err, fault.Invalid, "invalid_payload", "the database refuses a value of the event")
	}
	return o.next.Handle(ctx, ev)
}

func streamLastSeq(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// letter stores a dead letter the way the processor does.
func letter(t *testing.T, js jetstream.JetStream, streamSeq uint64, eventID, typ, subject, reason string, body []byte) uint64 {
	t.Helper()
	h := nats.Header{}
	h.Set(streams.HeaderMsgID, eventID)
	h.Set(streams.HeaderEventID, eventID)
	h.Set(streams.HeaderEventType, typ)
	h.Set(streams.HeaderEndpoint, "default")
	res, err := streams.PublishLetter(context.Background(), js, streams.Letter{
		Subject: subject, Header: h, Data: body, StreamSeq: streamSeq, Reason: reason,
		LastError: "line one\nline two", Deliveries: 3, At: time.Now().Add(-90 * time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Sequence
}

// list, show, purge and the refusals, on letters stored directly (no
// processor).
func TestDLQListShowPurge(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	env := config.MapEnv(map[string]string{"NATS_URL": n.URL()})
	const subj = "stripe.events.default.charge.refunded"
	s1 := letter(t, js, 11, "evt_a", "charge.refunded", subj, "unknown_purchase", []byte(`{"id":"evt_a","object":"event"}`))
	s2 := letter(t, js, 12, "evt_b", "charge.refunded", subj, "amount_mismatch", []byte(`{"id":"evt_b"}`))
	s3 := letter(t, js, 13, "evt_c", "charge.refunded", "not.an.events.subject", "invalid_payload", []byte("\x1b[2Jnot json"))

	out, err := runCLI(t, env, "dlq", "list", "--limit", "2")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, want := range []string{"evt_a", "unknown_purchase", "1h", "line one line two", "2 shown, 3 in STRIPE_DLQ", "--from " + strconv.FormatUint(s2+1, 10)} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "evt_c") {
		t.Errorf("--limit 2 listed a third letter:\n%s", out)
	}
	out, err = runCLI(t, env, "dlq", "list", "--from", strconv.FormatUint(s3, 10), "--json")
	var page []letterJSON
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page) != 1 || page[0].EventID != "evt_c" {
		t.Errorf("list --from %d --json = %v\n%s", s3, err, out)
	}

	out, err = runCLI(t, env, "dlq", "show", strconv.FormatUint(s1, 10))
	if err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	for _, want := range []string{"Paystream-Dlq-Reason: unknown_purchase", "Nats-Msg-Id: dlq-11", "\"object\": \"event\"", "deliveries     3"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, env, "dlq", "show", strconv.FormatUint(s3, 10))
	if err != nil || !strings.Contains(out, `not JSON, 12 bytes) "\x1b[2Jnot json"`) {
		t.Errorf("show of a non-JSON body must quote it: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "dlq", "show", strconv.FormatUint(s1, 10), "--json")
	var full letterJSON
	if err != nil || json.Unmarshal([]byte(out), &full) != nil || full.Headers.Get(streams.HeaderDLQReason) != "unknown_purchase" ||
		!strings.Contains(string(full.Body), `"evt_a"`) {
		t.Errorf("show --json = %v\n%s", err, out)
	}

	// A letter whose original subject is not an events subject cannot be
	// replayed, is reported, and stays.
	out, err = runCLI(t, env, "dlq", "replay", strconv.FormatUint(s3, 10))
	if err == nil || !strings.Contains(out, "FAILED") {
		t.Errorf("replay of a letter with a bad subject = %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "dlq", "replay", "--all", "--dry-run", "--reason", "invalid_payload")
	if err == nil || !strings.Contains(out, "cannot replay dead letter "+strconv.FormatUint(s3, 10)) || strings.Contains(out, "evt_a") {
		t.Errorf("replay --all --dry-run --reason = %v\n%s", err, out)
	}

	out, err = runCLI(t, env, "dlq", "purge", "--all")
	if !errors.Is(err, errUsage) || !strings.Contains(out, "--yes") {
		t.Errorf("purge --all without --yes = %v\n%s", err, out)
	}
	if out, err := runCLI(t, env, "dlq", "purge", strconv.FormatUint(s2, 10)); err != nil || !strings.Contains(out, "purged dead letter") {
		t.Errorf("purge one: %v\n%s", err, out)
	}
	if out, err := runCLI(t, env, "dlq", "show", strconv.FormatUint(s2, 10)); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("show of a purged letter = %v\n%s", err, out)
	}
	if out, err := runCLI(t, env, "dlq", "purge", "--all", "--yes"); err != nil || strings.Count(out, "purged dead letter") != 2 {
		t.Errorf("purge --all --yes: %v\n%s", err, out)
	}
	if got := dlqList(t, env); len(got) != 0 {
		t.Errorf("after purge --all: %+v", got)
	}
}

func TestDLQUsageErrors(t *testing.T) {
	// NATS_URL points nowhere: every case must fail before connecting.
	env := config.MapEnv(map[string]string{"NATS_URL": "nats://127.0.0.1:1"})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "usage: paystream dlq"},
		{"unknown subcommand", []string{"rm", "1"}, "unknown subcommand"},
		{"show without sequence", []string{"show"}, "exactly one sequence"},
		{"sequence not a number", []string{"show", "evt_1"}, "not a dead-letter sequence"},
		{"sequence zero", []string{"purge", "0"}, "not a dead-letter sequence"},
		{"replay without target", []string{"replay", "--dry-run"}, "sequences or --all"},
		{"replay sequence and all", []string{"replay", "3", "--all"}, "not both"},
		{"reason without all", []string{"replay", "3", "--reason", "x"}, "--reason filters --all"},
		{"purge all without yes", []string{"purge", "--all"}, "--yes"},
		{"list with argument", []string{"list", "5"}, "--from"},
		{"list limit zero", []string{"list", "--limit", "0"}, "--limit"},
		{"unknown flag", []string{"list", "--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, env, append([]string{"dlq"}, tt.args...)...)
			if !errors.Is(err, errUsage) || !strings.Contains(out, tt.want) {
				t.Errorf("dlq %v = %v, want usage error mentioning %q\n%s", tt.args, err, tt.want, out)
			}
		})
	}
}

func TestDLQFailsWhenBrokerDown(t *testing.T) {
	env := config.MapEnv(map[string]string{"NATS_URL": "nats://127.0.0.1:1"})
	start := time.Now()
	out, err := runCLI(t, env, "dlq", "list")
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("dlq list with no broker = %v, want a connection error\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("dlq list took %s to give up on an unreachable broker", d)
	}
}
