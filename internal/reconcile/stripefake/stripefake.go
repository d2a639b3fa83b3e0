// Package stripefake is a local fake of the Stripe Events API list endpoint
// (GET /v1/events) for tests: point stripe-go at its URL (STRIPE_API_BASE)
// and it pages through the events added to it the way Stripe does — newest
// first, `created[gte|gt|lte|lt]`, `types[]`, `limit`, `starting_after`,
// `has_more` — checks the bearer key, answers Stripe-shaped error bodies, and
// can be told to fail the next requests (429, 5xx) to exercise retries.
package stripefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Key is a secret key the fake accepts unless New is given another.
const Key = "sk_test_fake0000000000000000000000"

// Failure is a scripted answer to the next request instead of a list page.
type Failure struct {
	Status int         // e.g. 429, 500
	Header http.Header // e.g. Stripe-Should-Retry, Retry-After
	Type   string      // Stripe error type; api_error when empty
	Code   string      // Stripe error code, e.g. rate_limit
}

// Request is what the fake saw of one call, for assertions.
type Request struct {
	Query  url.Values
	Status int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	key string

	mu       sync.Mutex
	events   []stored // newest first, as Stripe lists them
	failures []Failure
	failFrom int // failures start once this many requests were served
	requests []Request
}

type stored struct {
	id, typ string
	created int64
	seq     int // insertion order: ties in created keep newest-added first
	raw     json.RawMessage
}

// New starts a fake accepting key (Key when empty); it stops at cleanup.
func New(tb testing.TB, key string) *Server {
	tb.Helper()
	if key == "" {
		key = Key
	}
	s := &Server{key: key}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

// Add stores Stripe event JSON objects (as stripefixture builds them).
func (s *Server) Add(events ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range events {
		var head struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Created int64  `json:"created"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
			return fmt.Errorf("stripefake: not a Stripe event: %v", err)
		}
		s.events = append(s.events, stored{head.ID, head.Type, head.Created, len(s.events), raw})
	}
	slices.SortStableFunc(s.events, func(a, b stored) int {
		if a.created != b.created {
			return int(b.created - a.created)
		}
		return b.seq - a.seq
	})
	return nil
}

// FailNext makes the next len(fs) requests answer fs in order.
func (s *Server) FailNext(fs ...Failure) { s.FailFrom(0, fs...) }

// FailFrom makes the requests after the first n (counting every request
// served so far) answer fs in order, e.g. to fail the second page of a list.
func (s *Server) FailFrom(n int, fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFrom = max(n, len(s.requests))
	s.failures = append(s.failures, fs...)
}

// Requests returns the calls seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

var typesKey = regexp.MustCompile(`^types\[\d*\]$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	status, body, hdr := s.answer(r, q)
	s.requests = append(s.requests, Request{Query: q, Status: status})
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_fake%d", len(s.requests)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) answer(r *http.Request, q url.Values) (int, []byte, http.Header) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
		return stripeError(http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
	}
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		return stripeError(http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided: "+redact(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
	}
	if len(s.failures) > 0 && len(s.requests) >= s.failFrom {
		f := s.failures[0]
		s.failures = s.failures[1:]
		typ := f.Type
		if typ == "" {
			typ = "api_error"
		}
		st, b, _ := stripeError(f.Status, typ, f.Code, "Scripted failure "+strconv.Itoa(f.Status))
		return st, b, f.Header
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return badRequest("limit", "This value must be between 1 and 100.")
		}
		limit = n
	}
	var types []string
	for k, vs := range q {
		if typesKey.MatchString(k) {
			types = append(types, vs...)
		}
	}
	if len(types) > 20 {
		return badRequest("types", "You may pass up to 20 types.")
	}
	if q.Get("type") != "" && len(types) > 0 {
		return badRequest("type", "You may pass either `type` or `types`, but not both.")
	}
	if t := q.Get("type"); t != "" {
		types = []string{t}
	}
	var bounds [4]*int64 // gte, gt, lte, lt
	for i, op := range []string{"gte", "gt", "lte", "lt"} {
		if v := q.Get("created[" + op + "]"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return badRequest("created", "Invalid integer: "+v)
			}
			bounds[i] = &n
		}
	}
	start := 0
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(s.events, func(e stored) bool { return e.id == after })
		if i < 0 {
			return stripeError(http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such event: '"+after+"'")
		}
		start = i + 1
	}
	var page []json.RawMessage
	hasMore := false
	for _, e := range s.events[start:] {
		if !match(e, types, bounds) {
			continue
		}
		if len(page) == limit {
			hasMore = true
			break
		}
		page = append(page, e.raw)
	}
	if page == nil {
		page = []json.RawMessage{}
	}
	b, err := json.Marshal(map[string]any{"object": "list", "url": "/v1/events", "has_more": hasMore, "data": page})
	if err != nil {
		return stripeError(http.StatusInternalServerError, "api_error", "", err.Error())
	}
	// Stripe pretty-prints its answers; so does the fake, so the raw items a
	// client passes on carry Stripe's whitespace, not Go's.
	var ind bytes.Buffer
	_ = json.Indent(&ind, b, "", "  ")
	return http.StatusOK, ind.Bytes(), nil
}

func match(e stored, types []string, b [4]*int64) bool {
	if len(types) > 0 && !slices.Contains(types, e.typ) {
		return false
	}
	return (b[0] == nil || e.created >= *b[0]) && (b[1] == nil || e.created > *b[1]) &&
		(b[2] == nil || e.created <= *b[2]) && (b[3] == nil || e.created < *b[3])
}

func badRequest(param, msg string) (int, []byte, http.Header) {
	return stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid", param+": "+msg)
}

// stripeError renders Stripe's error envelope.
func stripeError(status int, typ, code, msg string) (int, []byte, http.Header) {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return status, b, nil
}

// redact shows a key the way Stripe does in its 401 message.
func redact(k string) string {
	if len(k) <= 4 {
		return "****"
	}
	return strings.Repeat("*", 4) + k[len(k)-4:]
}
