// Package stripefake is a stateful local fake of the Stripe APIs the payout
// engine and onboarding call — transfers (create, list, retrieve), Express
// accounts and Account Links — for tests: point stripe-go at its URL.
//
// It honours idempotency keys as Stripe (API v1) does: the answer of a
// keyed POST whose execution began is saved, errors and 500s included, and
// replayed for the same key for 24 hours (on the fake's clock); the same
// key with other parameters or on another endpoint is refused (409
// idempotency_error); a key whose first request is still executing is
// refused with 409 idempotency_key_in_use. Faults are injected per create
// request (FailNext, OnCreate): a 500 with or without the transfer made, a
// hang until the client gives up, balance_insufficient, account_invalid,
// transfers_not_allowed, a 429, and "create the transfer, then drop the
// connection before answering". It counts transfers per transfer group, so
// a test can assert exactly one per payout.
package stripefake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Key is the secret key the fake accepts.
const Key = "sk_test_payoutfake000000000000000"

// KeyTTL is how long a saved answer is replayed for its key.
const KeyTTL = 24 * time.Hour

// Fault is what the fake does with one transfer create request instead of
// (or besides) creating the transfer.
type Fault string

// Faults.
const (
	None                Fault = ""
	Fail500             Fault = "500"                  // execution began and failed: 500, saved, no transfer
	Created500          Fault = "created_500"          // the transfer is made, the answer is a 500, saved
	Hang                Fault = "hang"                 // no answer until the client gives up; nothing executed or saved
	BalanceInsufficient Fault = "balance_insufficient" // 400 balance_insufficient, saved
	AccountInvalid      Fault = "account_invalid"      // 400 account_invalid, saved
	TransfersNotAllowed Fault = "transfers_not_allowed"
	RateLimit           Fault = "rate_limit"       // 429 before execution: not saved
	CreateThenDrop      Fault = "create_then_drop" // the transfer is made and its answer saved; the connection is closed unanswered
)

// Transfer is a transfer the fake made.
type Transfer struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	AmountReversed int64             `json:"amount_reversed"`
	Currency       string            `json:"currency"`
	Description    string            `json:"description,omitempty"`
	Destination    string            `json:"destination"`
	TransferGroup  string            `json:"transfer_group"`
	Created        int64             `json:"created"`
	Livemode       bool              `json:"livemode"`
	Reversed       bool              `json:"reversed"`
	Metadata       map[string]string `json:"metadata"`
	Reversals      list              `json:"reversals"`
}

// Account is a connected account the fake knows.
type Account struct {
	ID       string
	Metadata map[string]string
	Country  string
	// Refuse is the error code every transfer to the account gets
	// (account_invalid, transfers_not_allowed), "" to accept.
	Refuse string
}

type list struct {
	Object  string `json:"object"`
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Data    []any  `json:"data"`
}

// saved is the answer of a keyed request whose execution began.
type saved struct {
	endpoint, params string
	status           int
	body             []byte
	at               time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	offset    time.Duration // the fake's clock is time.Now() + offset
	transfers []*Transfer   // in creation order
	byGroup   map[string][]*Transfer
	keys      map[string]*saved
	inflight  map[string]bool
	accounts  map[string]*Account
	queue     []Fault
	onCreate  func(n int, group string) Fault
	creates   int // create requests that reached execution or a fault
	requests  map[string]int
	lastSeq   int
}

// New starts a fake; it stops at cleanup.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{byGroup: map[string][]*Transfer{}, keys: map[string]*saved{}, inflight: map[string]bool{},
		accounts: map[string]*Account{}, requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

// Now is the fake's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

// Advance moves the fake's clock forward (saved answers expire after KeyTTL).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// AddAccount makes acct a connected account transfers may go to.
func (s *Server) AddAccount(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[id] == nil {
		s.accounts[id] = &Account{ID: id}
	}
}

// RefuseAccount makes every later transfer to the account fail with code
// (account_invalid, transfers_not_allowed); "" accepts again.
func (s *Server) RefuseAccount(id, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[id]; a != nil {
		a.Refuse = code
	}
}

// Accounts returns the accounts created through the API or added.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, *a)
	}
	return out
}

// FailNext makes the next len(fs) transfer create requests that are not
// replays of a saved answer meet fs in order; None lets one through.
func (s *Server) FailNext(fs ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, fs...)
}

// OnCreate decides the fault of every transfer create request not
// replayed from its key and not taken by FailNext: n counts such requests
// from 1, group is the request's transfer_group.
func (s *Server) OnCreate(f func(n int, group string) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCreate = f
}

// Transfers returns every transfer made, oldest first.
func (s *Server) Transfers() []Transfer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transfer, len(s.transfers))
	for i, t := range s.transfers {
		out[i] = *t
	}
	return out
}

// TransfersInGroup counts the transfers of a transfer group.
func (s *Server) TransfersInGroup(group string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byGroup[group])
}

// Duplicates returns the transfer groups with more than one transfer.
func (s *Server) Duplicates() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for g, ts := range s.byGroup {
		if len(ts) > 1 {
			out[g] = len(ts)
		}
	}
	return out
}

// Reverse reverses amount more of a transfer (an operator's action in the
// Dashboard) and returns the transfer after it.
func (s *Server) Reverse(id string, amount int64) (Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.transfers {
		if t.ID == id {
			if t.AmountReversed+amount > t.Amount {
				return Transfer{}, fmt.Errorf("stripefake: reversal of %d exceeds what is left of %s", amount, id)
			}
			t.AmountReversed += amount
			t.Reversed = t.AmountReversed == t.Amount
			return *t, nil
		}
	}
	return Transfer{}, fmt.Errorf("stripefake: no transfer %s", id)
}

// Requests returns how many requests each endpoint ("POST /v1/transfers",
// …) received.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// answer is one HTTP answer.
type answer struct {
	status int
	body   []byte
	drop   bool // close the connection instead of writing the answer
	saved  bool // a replay of a saved answer
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		write(w, errorAnswer(http.StatusBadRequest, "invalid_request_error", "", "unreadable form"))
		return
	}
	endpoint := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.requests[endpoint]++
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+Key {
		write(w, errorAnswer(http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided"))
		return
	}
	var a answer
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/transfers":
		a = s.keyed(r, endpoint, s.createTransfer)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/transfers":
		a = s.listTransfers(r.Form)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/transfers/"):
		a = s.getTransfer(strings.TrimPrefix(r.URL.Path, "/v1/transfers/"))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/accounts":
		a = s.keyed(r, endpoint, s.createAccount)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/account_links":
		a = s.createLink(r.Form)
	default:
		a = errorAnswer(http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL ("+endpoint+")")
	}
	if a.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	if a.saved {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	write(w, a)
}

func write(w http.ResponseWriter, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// executor runs a keyed request. It returns the answer and whether its
// execution began (so the answer is saved for the key).
type executor func(r *http.Request) (answer, bool)

// keyed applies Stripe's idempotency rules around exec.
func (s *Server) keyed(r *http.Request, endpoint string, exec executor) answer {
	key := r.Header.Get("Idempotency-Key")
	params := r.PostForm.Encode() // sorted by key: the same parameters encode the same
	if key != "" {
		s.mu.Lock()
		if sv := s.keys[key]; sv != nil && s.now().Sub(sv.at) < KeyTTL {
			s.mu.Unlock()
			if sv.endpoint != endpoint || sv.params != params {
				return errorAnswer(http.StatusConflict, "idempotency_error", "",
					"Keys for idempotent requests can only be used with the same parameters they were first used with.")
			}
			return answer{status: sv.status, body: sv.body, saved: true}
		}
		if s.inflight[key] {
			s.mu.Unlock()
			return errorAnswer(http.StatusConflict, "invalid_request_error", "idempotency_key_in_use",
				"There is currently another in-progress request using this Idempotent Key.")
		}
		s.inflight[key] = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
		}()
	}
	a, began := exec(r)
	if began && key != "" {
		s.mu.Lock()
		s.keys[key] = &saved{endpoint: endpoint, params: params, status: a.status, body: a.body, at: s.now()}
		s.mu.Unlock()
	}
	return a
}

// formMap reads name[key]=value fields into a map.
func formMap(f url.Values, name string) map[string]string {
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if inner, ok := strings.CutPrefix(k, name+"["); ok && strings.HasSuffix(inner, "]") {
			out[strings.TrimSuffix(inner, "]")] = f.Get(k)
		}
	}
	return out
}

func errorAnswer(status int, typ, code, msg string) answer {
	e := map[string]string{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	body, _ := json.Marshal(map[string]any{"error": e})
	return answer{status: status, body: body}
}
