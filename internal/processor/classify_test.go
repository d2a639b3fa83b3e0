package processor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/streams"
)

func TestClassify(t *testing.T) {
	c := streams.ConsumerConfig{MaxDeliver: 4, Backoff: []time.Duration{time.Second, 5 * time.Second}}
	tests := []struct {
		name       string
		err        error
		deliveries uint64
		want       Decision
	}{
		{"success", nil, 1, Decision{Verdict: Ack}},
		{"success on last delivery", nil, 4, Decision{Verdict: Ack}},
		{"invalid", fault.New(fault.Invalid, "amount_mismatch", "x"), 1, Decision{Verdict: DeadLetter, Reason: "amount_mismatch"}},
		{"not found wrapped", fmt.Errorf("apply: %w", fault.New(fault.NotFound, "unknown_content", "x")), 2,
			Decision{Verdict: DeadLetter, Reason: "unknown_content"}},
		{"invalid without reason", &fault.Error{Code: fault.Invalid}, 1, Decision{Verdict: DeadLetter, Reason: "invalid"}},
		{"hostile reason", fault.New(fault.Invalid, "Bad Reason\n", "x"), 1, Decision{Verdict: DeadLetter, Reason: "other"}},
		{"unavailable first", fault.New(fault.Unavailable, "db_down", "x"), 1, Decision{Verdict: Retry, Delay: time.Second}},
		{"pending second", fault.New(fault.Pending, "no_purchase_yet", "x"), 2, Decision{Verdict: Retry, Delay: 5 * time.Second}},
		{"plain error is internal", errors.New("boom"), 3, Decision{Verdict: Retry, Delay: 5 * time.Second}},
		{"deadline is internal", context.DeadlineExceeded, 1, Decision{Verdict: Retry, Delay: time.Second}},
		{"transient on last delivery", fault.New(fault.Unavailable, "db_down", "x"), 4,
			Decision{Verdict: DeadLetter, Reason: streams.ReasonMaxDeliveries}},
		{"transient past last delivery", errors.New("boom"), 9, Decision{Verdict: DeadLetter, Reason: streams.ReasonMaxDeliveries}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err, tt.deliveries, c); got != tt.want {
				t.Fatalf("Classify(%v, %d) = %+v, want %+v", tt.err, tt.deliveries, got, tt.want)
			}
		})
	}
}

func goodHeader(id, endpoint, typ string) nats.Header {
	return nats.Header{
		streams.HeaderEventID:    {id},
		streams.HeaderEventType:  {typ},
		streams.HeaderEndpoint:   {endpoint},
		streams.HeaderLivemode:   {"false"},
		streams.HeaderCreated:    {"1700000000"},
		streams.HeaderReceivedAt: {"2026-11-27T06:00:00.5Z"},
	}
}

func TestDecodeEvent(t *testing.T) {
	const subj = "stripe.events.default.charge.refunded"
	body := `{"id":"evt_1","object":"event","type":"charge.refunded"}`
	tests := []struct {
		name       string
		subject    string
		mutate     func(nats.Header)
		body       string
		wantReason string // "" means decodes
	}{
		{"good", subj, func(nats.Header) {}, body, ""},
		{"no received-at is fine", subj, func(h nats.Header) { h.Del(streams.HeaderReceivedAt) }, body, ""},
		{"garbled received-at is ignored", subj, func(h nats.Header) { h.Set(streams.HeaderReceivedAt, "yesterday") }, body, ""},
		{"no event id", subj, func(h nats.Header) { h.Del(streams.HeaderEventID) }, body, streams.ReasonInvalidHeaders},
		{"bad type", subj, func(h nats.Header) { h.Set(streams.HeaderEventType, "charge.*") }, body, streams.ReasonInvalidHeaders},
		{"no endpoint", subj, func(h nats.Header) { h.Del(streams.HeaderEndpoint) }, body, streams.ReasonInvalidHeaders},
		{"subject mismatch", "stripe.events.other.charge.refunded", func(nats.Header) {}, body, streams.ReasonInvalidHeaders},
		{"bad livemode", subj, func(h nats.Header) { h.Set(streams.HeaderLivemode, "maybe") }, body, streams.ReasonInvalidHeaders},
		{"bad created", subj, func(h nats.Header) { h.Set(streams.HeaderCreated, "-5") }, body, streams.ReasonInvalidHeaders},
		// The body is the handler's to decode and check (stripeevent.Decode,
		// TestPayloadsThatAreNotTheirEventAreDeadLettered): the runtime
		// hands it over unread.
		{"body not read", subj, func(nats.Header) {}, "<html>", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := goodHeader("evt_1", "default", "charge.refunded")
			tt.mutate(h)
			ev, err := decodeEvent(tt.subject, h, []byte(tt.body), 3)
			if tt.wantReason != "" {
				if fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != tt.wantReason {
					t.Fatalf("decodeEvent err = %v (code %s, reason %s), want invalid/%s", err, fault.CodeOf(err), fault.ReasonOf(err), tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != "evt_1" || ev.Type != "charge.refunded" || ev.Endpoint != "default" || ev.Deliveries != 3 ||
				ev.Created != time.Unix(1700000000, 0).UTC() || ev.Subject != subj || string(ev.Payload) != tt.body {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}
