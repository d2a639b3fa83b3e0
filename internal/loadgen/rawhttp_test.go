package loadgen

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestReadResponseAgreesWithNetHTTP: on every response a webhook server
// sends, readResponse returns net/http's status and connection decision and
// leaves the reader at the next response; what it does not understand is an
// error, never a wrong status.
func TestReadResponseAgreesWithNetHTTP(t *testing.T) {
	ok := []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"received\":true}\n",
		"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nConnection: close\r\n\r\nlater",
		"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH:   0  \r\n\r\n",
		"HTTP/1.1 204 No Content\r\nX-Request-Id: a\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 3\r\n\r\n{}\n",
		"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
	}
	for _, resp := range ok {
		next := "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
		status, closing, err := readResponse(bufio.NewReader(strings.NewReader(resp + next)))
		want, werr := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
		if werr != nil {
			t.Fatalf("net/http refuses %q: %v", resp, werr)
		}
		if err != nil || status != want.StatusCode || closing != want.Close {
			t.Errorf("%q: got %d close=%v err=%v, net/http %d close=%v", resp, status, closing, err, want.StatusCode, want.Close)
		}
		br := bufio.NewReader(strings.NewReader(resp + next))
		_, _, _ = readResponse(br)
		if status, _, err := readResponse(br); err != nil || status != http.StatusCreated {
			t.Errorf("%q: the next response read as %d, %v", resp, status, err)
		}
	}
	bad := []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nbody until close",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
		"",
	}
	for _, resp := range bad {
		if status, _, err := readResponse(bufio.NewReader(strings.NewReader(resp))); err == nil {
			t.Errorf("%q: accepted as %d", resp, status)
		}
	}
}

// The API getter sends GETs with the bearer key, returns each body whole,
// survives the server closing a connection, and its answers are labelled
// by access type as the direct side labels rows.
func TestAPIGetterAndAccessLabel(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer k1" {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		switch r.URL.Path {
		case "/v1/customers/a/access/c":
			_, _ = io.WriteString(w, `{"object":"access","active":true,"access_type":"subscription","purchase":null}`)
		case "/v1/customers/b/access/c":
			_, _ = io.WriteString(w, `{"object":"access","active":false,"access_type":null}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	g, err := newAPIGetter(srv.URL, "k1", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	var buf []byte
	for range 5 {
		for path, want := range map[string]string{"/v1/customers/a/access/c": "subscription",
			"/v1/customers/b/access/c": "none", "/v1/nope": "404"} {
			status, body, err := g.get(path, buf)
			if err != nil {
				t.Fatalf("get %s: %v", path, err)
			}
			if got, _ := accessLabel(status, body); got != want {
				t.Errorf("get %s = %d %q: label %q, want %q", path, status, body, got, want)
			}
			buf = body
		}
	}
	if got, ok := accessLabel(200, []byte(`{"object":"access"}`)); ok {
		t.Errorf("a 200 without access_type counts as success (%q)", got)
	}
}
