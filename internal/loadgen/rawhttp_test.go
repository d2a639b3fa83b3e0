package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// TestWebhookPosterSpeaksHTTPAndStripeSignatures: every request arrives
// whole, with the content type and a signature stripe-go accepts; the
// server closing a connection, or answering an error with a body, only
// makes the poster dial again; concurrent posts share the connections.
func TestWebhookPosterSpeaksHTTPAndStripeSignatures(t *testing.T) {
	const secret = "whsec_test_poster"
	var n, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/webhooks/stripe" ||
			r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			bad.Add(1)
		}
		if err := webhook.ValidatePayloadWithTolerance(body, r.Header.Get("Stripe-Signature"), secret, time.Minute); err != nil {
			bad.Add(1)
		}
		switch {
		case i%5 == 0:
			w.Header().Set("Connection", "close")
		case i%7 == 0:
			http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	defer srv.Close()

	p, err := NewPayloads(PayloadSpec{ContentID: "00000000-0000-0000-0000-000000000001",
		OrganizationID: "00000000-0000-0000-0000-000000000002", Amount: 100, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWebhookPoster(srv.URL+"/webhooks/stripe", secret, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var wg sync.WaitGroup
	var ok, unavailable atomic.Int64
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for range 50 {
				var body []byte
				body, _ = p.Next(buf)
				status, err := w.post(body, time.Now())
				switch {
				case err != nil:
					t.Errorf("post: %v", err)
				case status == http.StatusOK:
					ok.Add(1)
				case status == http.StatusServiceUnavailable:
					unavailable.Add(1)
				default:
					t.Errorf("status %d", status)
				}
			}
		})
	}
	wg.Wait()
	if n.Load() != 200 || ok.Load()+unavailable.Load() != 200 || unavailable.Load() == 0 || bad.Load() != 0 {
		t.Errorf("server saw %d requests (%d malformed), poster %d ok and %d unavailable", n.Load(), bad.Load(), ok.Load(), unavailable.Load())
	}
	if _, err := newWebhookPoster("https://example.com/webhooks/stripe", secret, 1); err == nil {
		t.Error("an https URL was accepted")
	}
}
