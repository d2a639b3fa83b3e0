package stripeclient_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/checkout/session"

	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  stripeclient.Config
		want string // "" = valid
	}{
		{"defaults", stripeclient.Config{}, ""},
		{"fake base", stripeclient.Config{APIBase: "http://127.0.0.1:12111", MaxNetworkRetries: stripeclient.MaxNetworkRetries}, ""},
		{"base not a URL", stripeclient.Config{APIBase: "stripe"}, "STRIPE_API_BASE"},
		{"base without host", stripeclient.Config{APIBase: "https://"}, "STRIPE_API_BASE"},
		{"negative retries", stripeclient.Config{MaxNetworkRetries: -1}, "STRIPE_MAX_NETWORK_RETRIES"},
		{"too many retries", stripeclient.Config{MaxNetworkRetries: stripeclient.MaxNetworkRetries + 1}, "STRIPE_MAX_NETWORK_RETRIES"},
		{"timeout too short", stripeclient.Config{Timeout: 500 * time.Millisecond}, "timeout"},
		{"short timeout of a given client", stripeclient.Config{Timeout: time.Millisecond, HTTPClient: &http.Client{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := stripeclient.New(stripeclient.Config{}, slog.New(slog.DiscardHandler)); err == nil ||
		!strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Errorf("New without a key = %v, want an error naming STRIPE_SECRET_KEY", err)
	}
	if _, err := stripeclient.New(stripeclient.Config{Key: "sk_test_x", APIBase: "stripe"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("New accepted an invalid config")
	}
}

// A failing call is logged by stripe-go at debug only (the caller logs the
// error it gets back), a retry at warn; the timeout bounds one attempt; the
// key and base are the ones configured.
func TestNewLogsAndTimesOutAsConfigured(t *testing.T) {
	var calls atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		// Read in full, so that a connection the client closes cancels r's context.
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 { // slower than the timeout: until the client gives up
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": "api_error", "message": "down"}})
	}))
	defer srv.Close()
	var logs testenv.LogBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := stripeclient.New(stripeclient.Config{Key: "sk_test_x", APIBase: srv.URL, MaxNetworkRetries: 1,
		Timeout: time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	client := session.Client{B: c.Backend, Key: c.Key}
	start := time.Now()
	_, err = client.New(&stripe.CheckoutSessionParams{Mode: stripe.String("payment")})
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusServiceUnavailable {
		t.Fatalf("New session = %v, want the 503 of the retry after the first attempt timed out", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s: the first attempt was not cut at the 1s timeout", d)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2 (one retry)", n)
	}
	if a, _ := auth.Load().(string); a != "Bearer sk_test_x" {
		t.Errorf("Authorization = %q", a)
	}
	out := logs.String()
	if strings.Contains(out, `"level":"ERROR"`) || strings.Contains(out, `"level":"INFO"`) {
		t.Errorf("stripe-go logged above debug (besides retries):\n%s", out)
	}
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "retry") || !strings.Contains(out, `"component":"stripe-go"`) {
		t.Errorf("no retry notice at warn from component stripe-go:\n%s", out)
	}
}
