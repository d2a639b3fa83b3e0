package purchase_test

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
)

// A signed checkout whose metadata customerId is not printable text (the
// bytes between the JSON quotes, as sent) is invalid metadata on both
// paths: dead-lettered at once as metadata_invalid, nothing written, never
// retried as if the database were down.
func TestCheckoutCustomerIDThatIsNotTextIsInvalidMetadata(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"NUL escape", `a\u0000b`},
		{"NUL alone", `\u0000`},
		{"invalid UTF-8", "a\xffb"},
		{"lone surrogate", `a\udc00b`},
		{"bell", `a\u0007b`},
		{"escape character", `a\u001bb`},
		{"C1 control", `a\u0085b`},
		{"line separator", "a\u2028b"},
		{"right-to-left override", `a\u202eb`},
		{"over 255 bytes", strings.Repeat("é", 128)},
	}
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ev := checkout(t, "checkout.session.completed", fmt.Sprintf("evt_text_%d", i), t0.Add(-time.Minute), cat,
					fmt.Sprintf("cs_text_%d", i), 2999, func(c *stripefixture.Checkout) { c.Metadata["customerId"] = "@@CUSTOMER@@" })
				ev.Payload = replaceOnce(t, ev.Payload, `"@@CUSTOMER@@"`, `"`+tt.raw+`"`)
				got, err := e.handle(ev)
				var fe *fault.Error
				if !errors.As(err, &fe) || fe.Code != fault.Invalid || fe.Reason != "metadata_invalid" {
					t.Fatalf("Handle = %s, %v; want fault.Invalid metadata_invalid", got, err)
				}
				if fault.ActionOf(err) != fault.DeadLetter || !strings.Contains(fe.Msg, purchase.MetaCustomerID) {
					t.Errorf("error %v is not dead-lettered naming %s", err, purchase.MetaCustomerID)
				}
				for _, table := range []string{"purchases", "content_access", "stripe_events", "outbox"} {
					if n := e.count(table, ""); n != 0 {
						t.Errorf("%s has %d rows after a rejected event", table, n)
					}
				}
			})
		}
		// The same session with a printable customerId is then applied.
		ev := checkout(t, "checkout.session.completed", "evt_text_ok", t0, cat, "cs_text_0", 2999, nil)
		if got, err := e.handle(ev); err != nil || got != handling.Applied {
			t.Fatalf("Handle = %s, %v; want applied", got, err)
		}
	})
}

// Bytes Postgres refuses anywhere else in a signed payload (here the
// buyer's name, stored only in stripe_events.payload) make the database
// answer 22021: the processor's classification dead-letters the event as
// invalid on both paths and never reports the store as unavailable (which
// would trip the breaker and pause the instance).
func TestPayloadBytesPostgresRefusesAreInvalidNotAnOutage(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		ev := checkout(t, "checkout.session.completed", "evt_bytes", t0, cat, "cs_bytes", 2999, nil)
		ev.Payload = replaceOnce(t, ev.Payload, `"Jenny Rosen"`, "\"Jenny \xff Rosen\"")
		got, err := e.handle(ev)
		if fault.CodeOf(err) != fault.Invalid || fault.ActionOf(err) != fault.DeadLetter || db.StoreUnavailable(err) || db.IsTransient(err) {
			t.Fatalf("Handle = %s, %v (SQLSTATE %q); want an invalid event, dead-lettered", got, err, db.SQLState(err))
		}
		for _, table := range []string{"purchases", "content_access", "stripe_events", "outbox"} {
			if n := e.count(table, ""); n != 0 {
				t.Errorf("%s has %d rows after a rejected event", table, n)
			}
		}
	})
}

// A Stripe id that is not an id (a NUL escape, a quote, a space) in any
// field a route stores or looks up by is an invalid payload on both paths:
// dead-lettered at once with nothing written. A NUL byte used to reach the
// SQL text, cut it, and come back as a syntax error retried through the
// whole retry budget.
func TestStripeIDsThatAreNotIDsAreInvalidPayloads(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		paid := newWorld(cat, "ids_paid")
		e.mustHandle(paid.checkout(t, "checkout.session.completed", "evt_ids_paid", t0.Add(-time.Hour), ""), handling.Applied)
		rows := func() map[string]int {
			m := map[string]int{}
			for _, table := range []string{"purchases", "content_access", "stripe_events", "outbox"} {
				m[table] = e.count(table, "")
			}
			return m
		}
		before := rows()
		tests := []struct {
			name string
			ev   stripeevent.Event
			old  string // a quoted id in the payload, replaced by a broken one
		}{
			{"session id", newWorld(cat, "ids_1").checkout(t, "checkout.session.completed", "evt_ids_1", t0, ""), `"cs_ids_1"`},
			{"session payment intent", newWorld(cat, "ids_2").checkout(t, "checkout.session.completed", "evt_ids_2", t0, ""), `"pi_ids_2"`},
			{"session customer", newWorld(cat, "ids_3").checkout(t, "checkout.session.completed", "evt_ids_3", t0, ""), `"cus_1"`},
			{"charge id", paid.refund(t, "evt_ids_4", t0, stripefixture.Refund{ID: "re_ids_4", Amount: 100}), `"ch_ids_paid"`},
			{"charge payment intent", paid.refund(t, "evt_ids_5", t0, stripefixture.Refund{ID: "re_ids_5", Amount: 100}), `"pi_ids_paid"`},
			{"refund id", paid.refund(t, "evt_ids_6", t0, stripefixture.Refund{ID: "re_ids_6", Amount: 100}), `"re_ids_6"`},
			{"dispute charge", paid.dispute(t, "charge.dispute.created", "evt_ids_7", t0, "needs_response"), `"ch_ids_paid"`},
			{"dispute payment intent", paid.dispute(t, "charge.dispute.created", "evt_ids_8", t0, "needs_response"), `"pi_ids_paid"`},
			{"payment intent latest charge", paid.paymentIntent(t, "payment_intent.succeeded", "evt_ids_9", t0), `"ch_ids_paid"`},
		}
		for _, tt := range tests {
			for _, broken := range []string{`\u0000"`, `'"`, ` x"`} {
				t.Run(tt.name+" "+broken, func(t *testing.T) {
					ev := tt.ev
					ev.Payload = replaceOnce(t, ev.Payload, tt.old, tt.old[:len(tt.old)-1]+broken)
					got, err := e.handle(ev)
					var fe *fault.Error
					if !errors.As(err, &fe) || fe.Code != fault.Invalid || fe.Reason != "invalid_payload" || fault.ActionOf(err) != fault.DeadLetter {
						t.Fatalf("Handle = %s, %v; want a dead-lettered invalid_payload", got, err)
					}
					if after := rows(); !maps.Equal(after, before) {
						t.Errorf("rows %v after a rejected event, want %v", after, before)
					}
				})
			}
		}
	})
}
