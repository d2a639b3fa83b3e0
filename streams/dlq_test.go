package streams_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// deliverOne publishes ev and returns it as delivered by a fresh consumer.
func deliverOne(t *testing.T, js jetstream.JetStream, ev stripeevent.Event, body string) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	ev.Payload = []byte(body)
	if _, err := streams.NewPublisher(js).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		Durable: "test-" + strings.ReplaceAll(ev.ID, "_", "-"), AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: "stripe.events.*." + ev.Type,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func testEvent(id string) stripeevent.Event {
	return stripeevent.Event{ID: id, Type: "checkout.session.completed", APIVersion: "2023-10-16", Endpoint: "booking",
		Created: time.Unix(1700000000, 0), ReceivedAt: time.Date(2026, 11, 27, 6, 0, 0, 123, time.UTC), RequestID: "req_1"}
}

// A delivered message copied to STRIPE_DLQ as the processor copies it keeps
// its body and headers, gains the dead-letter headers, and a second copy of
// the same message is deduplicated.
func TestPublishLetterCopiesOriginalAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	msg := deliverOne(t, js, testEvent("evt_dl1"), `{"id":"evt_dl1"}`)
	md, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	l := streams.Letter{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), StreamSeq: md.Sequence.Stream,
		Reason: "unknown_content", LastError: "content 42 not found\r\nInjected: header", Deliveries: 3, At: time.Now()}
	first, err := streams.PublishLetter(ctx, js, l)
	if err != nil || first.Duplicate {
		t.Fatalf("PublishLetter = %+v, %v", first, err)
	}
	second, err := streams.PublishLetter(ctx, js, l)
	if err != nil || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second PublishLetter = %+v, %v; want duplicate of %d", second, err, first.Sequence)
	}
	dl, err := streams.NewDLQ(js).Get(ctx, first.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Subject != "stripe.dlq.booking.checkout.session.completed" {
		t.Errorf("DLQ subject = %q", dl.Subject)
	}
	if string(dl.Data) != `{"id":"evt_dl1"}` {
		t.Errorf("data = %q", dl.Data)
	}
	for k, vs := range msg.Headers() {
		if k == streams.HeaderMsgID {
			continue
		}
		if got := dl.Header.Values(k); strings.Join(got, ",") != strings.Join(vs, ",") {
			t.Errorf("header %s = %v, want original %v", k, got, vs)
		}
	}
	want := map[string]string{
		streams.HeaderMsgID:            "dlq-" + itoa(md.Sequence.Stream),
		streams.HeaderDLQOriginalMsgID: "evt_dl1",
		streams.HeaderDLQReason:        "unknown_content",
		streams.HeaderDLQError:         "content 42 not found  Injected: header",
		streams.HeaderDLQDeliveries:    "3",
		streams.HeaderDLQSubject:       "stripe.events.booking.checkout.session.completed",
		streams.HeaderDLQStreamSeq:     itoa(md.Sequence.Stream),
		streams.HeaderEventID:          "evt_dl1",
		streams.HeaderReceivedAt:       "2026-11-27T06:00:00.000000123Z",
	}
	for k, v := range want {
		if got := dl.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if dl.Header.Get("Injected") != "" {
		t.Error("a newline in the error injected a header")
	}
	if dl.Reason != "unknown_content" || dl.Deliveries != 3 || dl.StreamSeq != md.Sequence.Stream || dl.At.IsZero() || dl.EventID != "evt_dl1" {
		t.Errorf("decoded = %+v", dl)
	}
}

func TestPublishLetterFallsBackToSafeSubject(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	tests := []struct {
		name, subject string
		header        nats.Header
		want          string
	}{
		{"from subject", "stripe.events.default.charge.refunded", nats.Header{}, "stripe.dlq.default.charge.refunded"},
		{"from headers", "stripe.events.x", nats.Header{streams.HeaderEndpoint: {"shop"}, streams.HeaderEventType: {"charge.refunded"}}, "stripe.dlq.shop.charge.refunded"},
		{"nothing usable", "stripe.events.Bad Subject", nats.Header{streams.HeaderEventType: {"a b"}}, "stripe.dlq.unknown.unknown"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: tt.subject, Header: tt.header,
				Data: []byte("x"), StreamSeq: uint64(100 + i), Reason: "invalid_headers", At: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			dl, err := streams.NewDLQ(js).Get(ctx, res.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if dl.Subject != tt.want {
				t.Errorf("subject = %q, want %q", dl.Subject, tt.want)
			}
		})
	}
	if _, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: "stripe.events.a.b"}); err == nil {
		t.Error("PublishLetter accepted stream sequence 0")
	}
}

func TestDLQListGetReplayPurge(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	var seqs []uint64
	for i, id := range []string{"evt_a", "evt_b", "evt_c"} {
		m := nats.NewMsg("stripe.events.default.charge.refunded")
		m.Data = []byte(`{"id":"` + id + `"}`)
		m.Header.Set(streams.HeaderMsgID, id)
		m.Header.Set(streams.HeaderEventID, id)
		m.Header.Set(streams.HeaderSource, "edge")
		m.Header.Set(streams.HeaderEventType, "charge.refunded")
		res, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: m.Subject, Header: m.Header, Data: m.Data,
			StreamSeq: uint64(i + 1), Reason: "amount_mismatch", LastError: "boom", Deliveries: 1, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, res.Sequence)
	}
	d := streams.NewDLQ(js)
	d.Now = func() time.Time { return time.Unix(1800000000, 0) }
	if n, err := d.Depth(ctx); err != nil || n != 3 {
		t.Fatalf("Depth = %d, %v; want 3", n, err)
	}
	if err := d.Purge(ctx, seqs[1]); err != nil {
		t.Fatal(err)
	}
	if err := d.Purge(ctx, seqs[1]); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("second Purge = %v, want ErrDeadLetterNotFound", err)
	}
	if _, err := d.Get(ctx, seqs[1]); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("Get(purged) = %v, want ErrDeadLetterNotFound", err)
	}
	list, err := d.List(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].EventID != "evt_a" || list[1].EventID != "evt_c" {
		t.Fatalf("List = %+v, want evt_a, evt_c", list)
	}
	if page, err := d.List(ctx, list[0].Sequence+1, 1); err != nil || len(page) != 1 || page[0].EventID != "evt_c" {
		t.Fatalf("List(from after first, 1) = %+v, %v", page, err)
	}

	res, err := d.Replay(ctx, seqs[2])
	if err != nil || res.Duplicate {
		t.Fatalf("Replay = %+v, %v", res, err)
	}
	again, err := d.Replay(ctx, seqs[2])
	if err != nil || !again.Duplicate {
		t.Fatalf("second Replay in the same second = %+v, %v; want duplicate", again, err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, res.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "stripe.events.default.charge.refunded" || string(raw.Data) != `{"id":"evt_c"}` {
		t.Errorf("replayed %s %q", raw.Subject, raw.Data)
	}
	if got := raw.Header.Get(streams.HeaderMsgID); got != "evt_c-replay-"+itoa(seqs[2])+"-1800000000" {
		t.Errorf("replay Nats-Msg-Id = %q", got)
	}
	if raw.Header.Get(streams.HeaderSource) != "dlq-replay" || raw.Header.Get(streams.HeaderEventID) != "evt_c" ||
		raw.Header.Get(streams.HeaderEventType) != "charge.refunded" {
		t.Errorf("replay headers = %v", raw.Header)
	}
	for k := range raw.Header {
		if strings.HasPrefix(k, "Paystream-Dlq-") {
			t.Errorf("replay carries DLQ header %s", k)
		}
	}
	if _, err := d.Replay(ctx, 9999); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("Replay(9999) = %v, want ErrDeadLetterNotFound", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestReplayRefusesSubjectsOutsideStripeEvents(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	for i, subj := range []string{"purchases.completed", "stripe.events.default.>", "stripe.events.x"} {
		h := nats.Header{streams.HeaderEventID: {"evt_x"}}
		res, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: subj, Header: h, Data: []byte("{}"),
			StreamSeq: uint64(500 + i), Reason: "invalid_headers", At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := streams.NewDLQ(js).Replay(ctx, res.Sequence); err == nil {
			t.Errorf("Replay to %q succeeded", subj)
		}
	}
}

func TestDLQListAllPagesFiltersAndDropsBodies(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	reasons := []string{"amount_mismatch", "invalid_payload", "amount_mismatch", "amount_mismatch", "invalid_payload"}
	var seqs []uint64
	for i, reason := range reasons {
		id := "evt_" + itoa(uint64(i))
		h := nats.Header{streams.HeaderEventID: {id}, streams.HeaderEventType: {"charge.refunded"}}
		res, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: "stripe.events.default.charge.refunded", Header: h,
			Data: []byte(`{"id":"` + id + `"}`), StreamSeq: uint64(i + 1), Reason: reason, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, res.Sequence)
	}
	d := streams.NewDLQ(js)
	if err := d.Purge(ctx, seqs[2]); err != nil {
		t.Fatal(err)
	}
	ids := func(ls []streams.DeadLetterMsg) string {
		var out []string
		for _, l := range ls {
			if l.Data != nil {
				t.Errorf("letter %d keeps its body", l.Sequence)
			}
			out = append(out, l.EventID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name, reason string
		page         int
		want         string
	}{
		{"all, pages of 2", "", 2, "evt_0,evt_1,evt_3,evt_4"},
		{"all, page equals count", "", 4, "evt_0,evt_1,evt_3,evt_4"},
		{"reason, pages of 1", "amount_mismatch", 1, "evt_0,evt_3"},
		{"reason, one page", "invalid_payload", 256, "evt_1,evt_4"},
		{"unknown reason", "nope", 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.ListAllPaged(ctx, tc.reason, tc.page)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tc.want {
				t.Errorf("ListAll(%q) page %d = %s, want %s", tc.reason, tc.page, ids(got), tc.want)
			}
		})
	}
	if got, err := d.ListAll(ctx, ""); err != nil || ids(got) != "evt_0,evt_1,evt_3,evt_4" {
		t.Errorf("ListAll = %s, %v", ids(got), err)
	}
}

// Redrive replays a letter and removes it only after the replay was stored;
// --keep leaves it, and a letter that cannot be replayed stays.
func TestRedriveRemovesTheLetterOnlyAfterTheReplay(t *testing.T) {
	ctx := context.Background()
	js := testenv.StartNATS(t).JetStream(t)
	d := streams.NewDLQ(js)
	publish := func(streamSeq uint64, subject string) uint64 {
		t.Helper()
		res, err := streams.PublishLetter(ctx, js, streams.Letter{Subject: subject,
			Header: nats.Header{streams.HeaderEventID: {"evt_r" + itoa(streamSeq)}}, Data: []byte("{}"),
			StreamSeq: streamSeq, Reason: "unknown_content", At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return res.Sequence
	}
	const subj = "stripe.events.default.checkout.session.completed"
	kept, removed, bad := publish(1, subj), publish(2, subj), publish(3, "purchases.completed")

	res, err := d.Redrive(ctx, kept, true)
	if err != nil || res.Purged || res.PurgeErr != nil || res.Sequence == 0 {
		t.Errorf("Redrive(keep) = %+v, %v; want replayed and kept", res, err)
	}
	if _, err := d.Get(ctx, kept); err != nil {
		t.Errorf("kept letter: %v", err)
	}
	res, err = d.Redrive(ctx, removed, false)
	if err != nil || !res.Purged || res.PurgeErr != nil || res.Sequence == 0 {
		t.Errorf("Redrive = %+v, %v; want replayed and purged", res, err)
	}
	if _, err := d.Get(ctx, removed); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Errorf("Get(redriven) = %v, want ErrDeadLetterNotFound", err)
	}
	if _, err := d.Redrive(ctx, bad, false); err == nil {
		t.Error("Redrive of a letter outside stripe.events succeeded")
	}
	if _, err := d.Get(ctx, bad); err != nil {
		t.Errorf("a letter whose replay failed was removed: %v", err)
	}
}

// DeadLetteredAt is the processor's stamp, else the broker's store time.
func TestDeadLetteredAtFallsBackToStoreTime(t *testing.T) {
	at, stored := time.Unix(1800000000, 0), time.Unix(1800000100, 0)
	if got := (streams.DeadLetterMsg{At: at, Stored: stored}).DeadLetteredAt(); !got.Equal(at) {
		t.Errorf("with At: %s, want %s", got, at)
	}
	if got := (streams.DeadLetterMsg{Stored: stored}).DeadLetteredAt(); !got.Equal(stored) {
		t.Errorf("without At: %s, want %s", got, stored)
	}
}
