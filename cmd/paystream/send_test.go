package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
)

// recorder is a stand-in receiver that verifies signatures with stripe-go,
// so the test proves `send` signs like Stripe. The real edge is driven by the
// dev-mode test.
type recorder struct {
	secret string
	mu     sync.Mutex
	events []stripe.Event
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), rec.secret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rec.mu.Lock()
	rec.events = append(rec.events, ev)
	rec.mu.Unlock()
	_, _ = w.Write([]byte(`{"status":"accepted"}`))
}

func TestSendSignsRealisticEvents(t *testing.T) {
	const secret = "whsec_test_send"
	tests := []struct {
		name      string
		args      []string
		wantCount int
		check     func(t *testing.T, evs []stripe.Event)
	}{
		{"checkout completed", []string{"checkout.session.completed"}, 1, func(t *testing.T, evs []stripe.Event) {
			if evs[0].Type != "checkout.session.completed" || evs[0].GetObjectValue("metadata", "contentId") != demo.ContentID {
				t.Errorf("event = %s %v", evs[0].Type, evs[0].Data.Object["metadata"])
			}
		}},
		{"repeat makes distinct events", []string{"checkout.session.completed", "--repeat", "3"}, 3, func(t *testing.T, evs []stripe.Event) {
			if evs[0].ID == evs[1].ID || evs[1].ID == evs[2].ID {
				t.Errorf("repeat reused ids: %s %s %s", evs[0].ID, evs[1].ID, evs[2].ID)
			}
		}},
		{"duplicate resends the same id", []string{"charge.refunded", "--payment-intent", "pi_x", "--duplicate"}, 2, func(t *testing.T, evs []stripe.Event) {
			if evs[0].ID != evs[1].ID || evs[0].GetObjectValue("payment_intent") != "pi_x" {
				t.Errorf("duplicate ids %s %s, pi %v", evs[0].ID, evs[1].ID, evs[0].GetObjectValue("payment_intent"))
			}
		}},
		{"dispute closed defaults to lost", []string{"charge.dispute.closed"}, 1, func(t *testing.T, evs []stripe.Event) {
			if evs[0].GetObjectValue("status") != "lost" {
				t.Errorf("status = %v", evs[0].GetObjectValue("status"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{secret: secret}
			srv := httptest.NewServer(rec)
			t.Cleanup(srv.Close)
			var out, errOut bytes.Buffer
			args := append([]string{"send"}, tt.args...)
			args = append(args, "--url", srv.URL)
			err := run(context.Background(), args, config.MapEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": secret + ",whsec_other"}), &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\n%s", err, errOut.String())
			}
			if len(rec.events) != tt.wantCount {
				t.Fatalf("received %d events, want %d; output:\n%s", len(rec.events), tt.wantCount, out.String())
			}
			if !strings.Contains(out.String(), "-> 200") {
				t.Errorf("output does not show the status: %s", out.String())
			}
			tt.check(t, rec.events)
		})
	}
}

func TestSendReportsRejection(t *testing.T) {
	rec := &recorder{secret: "whsec_right"}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"send", "checkout.session.completed", "--url", srv.URL, "--secret", "whsec_wrong"},
		config.MapEnv(nil), &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "-> 401") {
		t.Fatalf("err = %v, output %q; want a failure showing 401", err, out.String())
	}
}

func TestSendWithoutSecretExplains(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"send", "checkout.session.completed", "--data-dir", t.TempDir()}, config.MapEnv(nil), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET") {
		t.Fatalf("err = %v; want an explanation naming STRIPE_WEBHOOK_SECRET", err)
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"nope"}, config.MapEnv(nil), &out, &errOut); err != errUsage {
		t.Fatalf("err = %v, want errUsage", err)
	}
	if !strings.Contains(errOut.String(), "migrate") {
		t.Errorf("usage does not list commands: %s", errOut.String())
	}
}
