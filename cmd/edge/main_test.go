package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// logTap is run's stderr: it keeps every line and reports the listener
// addresses from the "edge listening" line.
type logTap struct {
	testenv.LogBuffer
	addrs chan [2]string
}

func (l *logTap) Write(p []byte) (int, error) {
	_, _ = l.LogBuffer.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Public string `json:"public_addr"`
			Admin  string `json:"admin_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "edge listening" {
			l.addrs <- [2]string{line.Public, line.Admin}
		}
	}
	return len(p), nil
}

func TestRunServesSignedEventsAndStopsCleanly(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	secret := stripefixture.NewSecret()
	env := map[string]string{
		"NATS_URL":              n.URL(),
		"EDGE_ADDR":             "127.0.0.1:0",
		"ADMIN_ADDR":            "127.0.0.1:0",
		"STRIPE_WEBHOOK_SECRET": secret,
		"LOG_LEVEL":             "debug",
	}
	environ := []string{"NATS_URL", "EDGE_ADDR", "ADMIN_ADDR", "STRIPE_WEBHOOK_SECRET", "LOG_LEVEL"}
	tap := &logTap{addrs: make(chan [2]string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, config.MapEnv(env), environ, io.Discard, tap) }()

	var addrs [2]string
	select {
	case addrs = <-tap.addrs:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, tap)
	case <-time.After(10 * time.Second):
		t.Fatalf("edge not listening after 10s\n%s", tap)
	}

	body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: "evt_main_1"}, stripefixture.Checkout{AmountTotal: 500})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[0]+"/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripefixture.Sign(body, secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed event: %d", resp.StatusCode)
	}
	s, err := js.Stream(t.Context(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(t.Context(), "stripe.events.default.checkout.session.completed"); err != nil {
		t.Fatalf("event not in the stream: %v", err)
	}
	ready, err := http.Get("http://" + addrs[1] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != 200 {
		t.Errorf("/readyz = %d", ready.StatusCode)
	}

	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	logs := tap.String()
	if strings.Contains(logs, secret) || strings.Contains(logs, "v1=") {
		t.Errorf("logs leak the secret or a signature:\n%s", logs)
	}
	for _, want := range []string{`"stripe_event_id":"evt_main_1"`, `"msg":"edge stopped"`, `"msg":"exit"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"no endpoint", nil, map[string]string{}, "STRIPE_WEBHOOK_SECRET"},
		{"bad secret", nil, map[string]string{"STRIPE_WEBHOOK_SECRET_BOOKING": "sk_live_x"}, "STRIPE_WEBHOOK_SECRET_BOOKING"},
		{"arguments", []string{"serve"}, map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var environ []string
			for k := range tt.env {
				environ = append(environ, k)
			}
			err := run(t.Context(), tt.args, config.MapEnv(tt.env), environ, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run = %v, want an error mentioning %s", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sk_live_x") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}
