package edge

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/streams"
)

// TestConcurrentBodiesStoredIntact: bodies are read into the server's
// recycled buffers, so a buffer reused while the broker or the client still
// used it would store one event's bytes under another's id. Many concurrent webhooks of different
// lengths, then every stored message is compared with what was sent for its
// Nats-Msg-Id.
func TestConcurrentBodiesStoredIntact(t *testing.T) {
	e := newTestEdge(t, nil)
	const n, workers = 200, 16
	sent := make(map[string][]byte, n)
	type job struct {
		body []byte
		sig  string
	}
	jobs := make(chan job, n)
	for i := range n {
		body, sig, id := signedEventPadded(t, testSecret, i*37%900)
		sent[id] = body
		jobs <- job{body, sig}
	}
	close(jobs)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				req, err := http.NewRequest(http.MethodPost, e.url+"/webhooks/stripe", bytes.NewReader(j.body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Stripe-Signature", j.sig)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()

	s, err := e.js.Stream(t.Context(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		id := m.Header.Get(streams.HeaderMsgID)
		if want, ok := sent[id]; !ok || !bytes.Equal(m.Data, want) {
			t.Fatalf("message %d (%s): stored body differs from the one sent", seq, id)
		}
		delete(sent, id)
	}
	if len(sent) != 0 {
		t.Fatalf("%d events not stored", len(sent))
	}
}

// signedEventPadded is signedEvent with pad bytes of whitespace before the
// closing brace, so bodies differ in length.
func signedEventPadded(tb testing.TB, secret string, pad int) (body []byte, header, id string) {
	tb.Helper()
	body, _, id = signedEvent(tb, secret)
	i := bytes.LastIndexByte(body, '}')
	body = append(append(body[:i:i], bytes.Repeat([]byte(" "), pad)...), '}')
	return body, stripefixture.Sign(body, secret, time.Now()), id
}
