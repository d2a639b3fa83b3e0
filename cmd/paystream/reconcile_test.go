package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/reconcile/stripefake"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// TestReconcileCommand runs the real command against the fake Events API and
// an embedded broker: one event the edge already delivered, two it missed.
func TestReconcileCommand(t *testing.T) {
	fake := stripefake.New(t, "")
	var ids []string
	for i, typ := range []string{"checkout.session.completed", "charge.refunded", "payment_intent.succeeded"} {
		m := stripefixture.Meta{EventID: stripefixture.NewID("evt_", 24), Created: time.Now().Add(-time.Duration(i+1) * time.Hour)}
		var raw []byte
		var err error
		switch typ {
		case "checkout.session.completed":
			raw, err = stripefixture.CheckoutEvent(typ, m, stripefixture.Checkout{AmountTotal: 500})
		case "charge.refunded":
			raw, err = stripefixture.ChargeRefundedEvent(m, stripefixture.Charge{Amount: 500, Refunds: []stripefixture.Refund{{Amount: 500}}})
		default:
			raw, err = stripefixture.PaymentIntentEvent(typ, m, stripefixture.PaymentIntent{Amount: 500})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := fake.Add(raw); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.EventID)
	}
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	if _, err := streams.NewPublisher(js).Publish(t.Context(), stripeevent.Event{ID: ids[0], Type: "checkout.session.completed",
		Endpoint: "default", ReceivedAt: time.Now(), Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"STRIPE_SECRET_KEY": stripefake.Key, "STRIPE_API_BASE": fake.URL, "NATS_URL": n.URL(), "LOG_LEVEL": "warn",
	}

	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantErr   string
		wantUsage bool
		check     func(t *testing.T, stdout string)
	}{
		{name: "json summary", args: []string{"--since", "72h", "--json", "--page-size", "2"}, env: env,
			check: func(t *testing.T, stdout string) {
				var s reconcile.Summary
				if err := json.Unmarshal([]byte(stdout), &s); err != nil {
					t.Fatalf("stdout is not a JSON summary: %v\n%s", err, stdout)
				}
				if s.Seen != 3 || s.Published != 2 || s.AlreadyPresent != 1 || s.Endpoint != "default" {
					t.Errorf("summary = %+v, want 3 seen, 2 published, 1 already present", s)
				}
			}},
		{name: "second run finds everything present", args: []string{"--since", "72h"}, env: env,
			check: func(t *testing.T, stdout string) {
				for _, want := range []string{"published        0", "already present  3", "reconcile done: seen=3"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("stdout lacks %q:\n%s", want, stdout)
					}
				}
			}},
		{name: "dry run needs no broker", args: []string{"--dry-run", "--types", "charge.refunded"},
			env: merge(env, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}),
			check: func(t *testing.T, stdout string) {
				if !strings.Contains(stdout, "would publish    1") {
					t.Errorf("stdout:\n%s", stdout)
				}
			}},
		{name: "dry run reads the stream to tell missed from present", args: []string{"--dry-run", "--types", "charge.refunded"},
			env: env, check: func(t *testing.T, stdout string) {
				for _, want := range []string{"would publish    0", "already present  1"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("stdout lacks %q:\n%s", want, stdout)
					}
				}
			}},
		{name: "key missing", env: merge(env, map[string]string{"STRIPE_SECRET_KEY": ""}), wantErr: "STRIPE_SECRET_KEY"},
		{name: "key rejected by Stripe", env: merge(env, map[string]string{"STRIPE_SECRET_KEY": "sk_test_other"}),
			wantErr: "Stripe rejected STRIPE_SECRET_KEY"},
		{name: "unhandled type", args: []string{"--types", "customer.created"}, env: env, wantErr: "not handled"},
		{name: "window too long", args: []string{"--since", "900h"}, env: env, wantErr: "30 days"},
		{name: "unknown flag", args: []string{"--nope"}, env: env, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{"reconcile"}, tt.args...), config.MapEnv(tt.env), &stdout, &stderr)
			switch {
			case tt.wantUsage:
				if err != errUsage {
					t.Fatalf("err = %v, want usage", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q\nstderr: %s", err, tt.wantErr, stderr.String())
				}
			default:
				if err != nil {
					t.Fatalf("err = %v\nstderr: %s", err, stderr.String())
				}
				tt.check(t, stdout.String())
			}
		})
	}

	s, err := js.Stream(t.Context(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("STRIPE_EVENTS holds %d messages, want 3 (one per Stripe event)", info.State.Msgs)
	}
}

func merge(base, over map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
