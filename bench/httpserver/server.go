// Package httpserver is an experiment, not part of paystream: it compares the
// standard library's HTTP server with github.com/valyala/fasthttp on the
// edge's workload (a keep-alive POST of a 2.3 KB Stripe event with a
// Stripe-Signature header, HMAC-SHA256 verification, a 200 with a small JSON
// body), measuring the server process's CPU per request and the requests per
// second. It is its own module so that paystream does not depend on fasthttp.
//
//	cd bench/httpserver && go test -bench . -benchtime=40000x -count=3
//
// Each server runs in a child process (the test binary itself), so its CPU
// is measured apart from the load generator's: getrusage in the child,
// before and after the measured requests.
package httpserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits as the edge sets them.
const (
	maxBody     = 1 << 20
	readTimeout = 15 * time.Second
	idleTimeout = 60 * time.Second
)

var acceptedBody = []byte(`{"status":"accepted","event_id":"evt_1","duplicate":false,"request_id":"req_1"}` + "\n")

// verifier checks "t=<unix>,v1=<hex>" signatures with pooled HMAC states, as
// the edge does.
type verifier struct {
	key  []byte
	macs sync.Pool
}

type macState struct {
	mac     hash.Hash
	scratch [32]byte
	sum     [sha256.Size]byte
	sig     [sha256.Size]byte
}

// verify reports whether header carries a v1 HMAC-SHA256 of "<t>.<body>".
// Generic so that net/http's string header and fasthttp's []byte header are
// both read without a copy.
func verify[T string | []byte](v *verifier, header T, body []byte) bool {
	var ts, sig T
	for rest := header; len(rest) > 0; {
		pair := rest
		if i := index(rest, ','); i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		} else {
			rest = rest[len(rest):]
		}
		switch {
		case len(pair) > 2 && pair[0] == 't' && pair[1] == '=':
			ts = pair[2:]
		case len(pair) > 3 && pair[0] == 'v' && pair[1] == '1' && pair[2] == '=':
			sig = pair[3:]
		}
	}
	if len(ts) == 0 || len(sig) != 2*sha256.Size {
		return false
	}
	st, ok := v.macs.Get().(*macState)
	if !ok {
		st = &macState{mac: hmac.New(sha256.New, v.key)}
	}
	defer v.macs.Put(st)
	for i := range st.sig {
		hi, lo := unhex(sig[2*i]), unhex(sig[2*i+1])
		if hi > 15 || lo > 15 {
			return false
		}
		st.sig[i] = hi<<4 | lo
	}
	if len(ts) >= len(st.scratch) {
		return false
	}
	n := copy(st.scratch[:], ts)
	st.scratch[n] = '.'
	st.mac.Reset()
	st.mac.Write(st.scratch[:n+1])
	st.mac.Write(body)
	return hmac.Equal(st.mac.Sum(st.sum[:0]), st.sig[:])
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

func index[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// securityHeaders are the response headers the edge sets on every answer.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Cache-Control", "no-store"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
}

// bodyPool recycles request body buffers (the edge's readBody).
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// netHTTPHandler is the webhook handler on net/http.
func netHTTPHandler(v *verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		h.Set("X-Request-Id", "req_1")
		if r.Method != http.MethodPost {
			http.Error(w, "only POST", http.StatusMethodNotAllowed)
			return
		}
		sig := r.Header.Get("Stripe-Signature")
		bp := bodyPool.Get().(*[]byte)
		defer bodyPool.Put(bp)
		b, err := readAll(http.MaxBytesReader(w, r.Body, maxBody), (*bp)[:0])
		*bp = b[:0]
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if !verify(v, sig, b) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(acceptedBody)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(acceptedBody)
	})
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// serveNetHTTP serves on ln with the edge's server settings.
func serveNetHTTP(ln net.Listener, v *verifier) error {
	s := &http.Server{
		Handler:           netHTTPHandler(v),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    32 << 10,
	}
	return s.Serve(ln)
}

// fastHTTPHandler is the same handler on fasthttp.
func fastHTTPHandler(v *verifier) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		h.Set("X-Request-Id", "req_1")
		if !ctx.IsPost() {
			ctx.Error("only POST", fasthttp.StatusMethodNotAllowed)
			return
		}
		if !verify(v, ctx.Request.Header.Peek("Stripe-Signature"), ctx.PostBody()) {
			ctx.Error("bad signature", fasthttp.StatusUnauthorized)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBody(acceptedBody)
	}
}

// serveFastHTTP serves on ln with the same limits.
func serveFastHTTP(ln net.Listener, v *verifier) error {
	s := &fasthttp.Server{
		Handler:            fastHTTPHandler(v),
		ReadTimeout:        readTimeout,
		WriteTimeout:       readTimeout,
		IdleTimeout:        idleTimeout,
		MaxRequestBodySize: maxBody,
		ReadBufferSize:     32 << 10,
	}
	return s.Serve(ln)
}
