package edge

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/streams"
)

// failingReader returns its bytes, then a read error that is not EOF.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

// TestReadBodyMatchesReadAll compares the pooled readBody with what it
// replaced, io.ReadAll over http.MaxBytesReader, on truthful, lying and
// missing Content-Lengths, bodies at and over the limit and a failing read;
// one pool serves every case in turn, so a recycled buffer that kept bytes of
// an earlier (longer) body would show.
func TestReadBodyMatchesReadAll(t *testing.T) {
	const limit = 100
	tests := []struct {
		name   string
		body   string
		length int64 // Content-Length as the client declared it; -1 unknown (chunked)
		fail   bool  // the read fails after the body
		nobody bool  // r.Body is nil
	}{
		{"long first, to dirty the pool", strings.Repeat("x", 99), 99, false, false},
		{"truthful", `{"id":"evt_1"}`, 14, false, false},
		{"empty", "", 0, false, false},
		{"nil body", "", 0, false, true},
		{"chunked", strings.Repeat("a", 60), -1, false, false},
		{"exactly the limit", strings.Repeat("b", limit), limit, false, false},
		{"exactly the limit, chunked", strings.Repeat("b", limit), -1, false, false},
		{"one over the limit, chunked", strings.Repeat("c", limit+1), -1, false, false},
		{"declared over the limit", "short", limit + 1, false, false},
		{"declared short, body longer", strings.Repeat("d", 80), 10, false, false},
		{"declared short, body over the limit", strings.Repeat("e", 3*limit), 10, false, false},
		{"declared long, body shorter", "tiny", 90, false, false},
		{"declared zero, body present", "zero", 0, false, false},
		{"read error", strings.Repeat("f", 30), 30, true, false},
		{"read error over the limit", strings.Repeat("g", 2*limit), -1, true, false},
		{"short after all that", "s", 1, false, false},
	}
	var pool bodyPool
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newReq := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", nil)
				if !tt.nobody {
					var rd io.Reader = strings.NewReader(tt.body)
					if tt.fail {
						rd = &failingReader{rd}
					}
					r.Body = io.NopCloser(rd)
				} else {
					r.Body = nil
				}
				r.ContentLength = tt.length
				return r
			}

			// The old code, inlined as the oracle.
			var want []byte
			var wantErr error
			oldReq := newReq()
			if oldReq.Body != nil {
				if oldReq.ContentLength > limit {
					wantErr = fault.New(fault.TooLarge, ReasonTooLarge, "too large")
				} else {
					b, err := io.ReadAll(http.MaxBytesReader(httptest.NewRecorder(), oldReq.Body, limit))
					var tooLarge *http.MaxBytesError
					switch {
					case errors.As(err, &tooLarge):
						wantErr = fault.New(fault.TooLarge, ReasonTooLarge, "too large")
					case err != nil:
						wantErr = fault.New(fault.Invalid, ReasonBodyReadError, "read error")
					default:
						want = b
					}
				}
			}

			buf, err := pool.readBody(httptest.NewRecorder(), newReq(), limit)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("readBody error = %v, want %v", err, wantErr)
			}
			if err != nil {
				if fault.CodeOf(err) != fault.CodeOf(wantErr) || fault.ReasonOf(err) != fault.ReasonOf(wantErr) {
					t.Fatalf("readBody error = %v (%s/%s), want %s/%s", err,
						fault.CodeOf(err), fault.ReasonOf(err), fault.CodeOf(wantErr), fault.ReasonOf(wantErr))
				}
				return
			}
			if !bytes.Equal(buf.b, want) {
				t.Fatalf("readBody = %q, want %q", buf.b, want)
			}
			pool.put(buf)
		})
	}
}

// TestBodyPoolDropsLargeBuffers: a body far over the usual size is not kept
// in the pool, and the up-front allocation from Content-Length is bounded.
func TestBodyPoolDropsLargeBuffers(t *testing.T) {
	var pool bodyPool
	const size = 3 * presizeMax
	r := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", strings.NewReader(strings.Repeat("z", size)))
	buf, err := pool.readBody(httptest.NewRecorder(), r, 1<<20)
	if err != nil || len(buf.b) != size {
		t.Fatalf("readBody = %d bytes, %v", len(buf.b), err)
	}
	pool.put(buf)
	if got := pool.get(); cap(got.b) > poolMax {
		t.Fatalf("pool kept a %d-byte buffer", cap(got.b))
	}

	// A client that announces 1 MiB and sends 3 bytes.
	r = httptest.NewRequest(http.MethodPost, "/webhooks/stripe", strings.NewReader("abc"))
	r.ContentLength = 1 << 20
	buf, err = pool.readBody(httptest.NewRecorder(), r, 1<<20)
	if err != nil || string(buf.b) != "abc" {
		t.Fatalf("readBody = %q, %v", buf.b, err)
	}
	if cap(buf.b) > presizeMax+1 {
		t.Fatalf("allocated %d bytes up front for an announced length", cap(buf.b))
	}
}

// TestConcurrentBodiesStoredIntact: bodies are read into recycled buffers, so
// a buffer returned while the broker or the client still used it would store
// one event's bytes under another's id. Many concurrent webhooks of different
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
				req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/stripe", bytes.NewReader(j.body))
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
