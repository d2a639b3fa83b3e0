package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// createTransfer executes POST /v1/transfers.
func (s *Server) createTransfer(r *http.Request) (answer, bool) {
	f := r.Form
	amount, err := strconv.ParseInt(f.Get("amount"), 10, 64)
	if err != nil || amount <= 0 {
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "amount must be a positive integer"), false
	}
	if f.Get("currency") == "" || f.Get("destination") == "" {
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "parameter_missing", "currency and destination are required"), false
	}
	group := f.Get("transfer_group")
	s.mu.Lock()
	fault := None
	if len(s.queue) > 0 {
		fault, s.queue = s.queue[0], s.queue[1:]
	} else if s.onCreate != nil {
		s.creates++
		fault = s.onCreate(s.creates, group)
	}
	s.mu.Unlock()
	switch fault {
	case RateLimit:
		return errorAnswer(http.StatusTooManyRequests, "invalid_request_error", "rate_limit", "Too many requests"), false
	case Hang:
		<-r.Context().Done() // the client gave up: nothing executed
		return answer{drop: true}, false
	case Fail500:
		return errorAnswer(http.StatusInternalServerError, "api_error", "", "An unknown error occurred"), true
	case BalanceInsufficient:
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "balance_insufficient",
			"You have insufficient funds in your Stripe account."), true
	case AccountInvalid, TransfersNotAllowed:
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", string(fault), "The destination account cannot receive transfers."), true
	}
	s.mu.Lock()
	acct := s.accounts[f.Get("destination")]
	switch {
	case acct == nil:
		s.mu.Unlock()
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such destination: "+f.Get("destination")), true
	case acct.Refuse != "":
		s.mu.Unlock()
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", acct.Refuse, "The destination account cannot receive transfers."), true
	}
	s.lastSeq++
	t := &Transfer{
		ID: fmt.Sprintf("tr_fake%08d", s.lastSeq), Object: "transfer", Amount: amount, Currency: f.Get("currency"),
		Description: f.Get("description"), Destination: acct.ID, TransferGroup: group, Created: s.now().Unix(),
		Metadata: formMap(f, "metadata"), Reversals: list{Object: "list", URL: "/v1/transfers/reversals", Data: []any{}},
	}
	s.transfers = append(s.transfers, t)
	s.byGroup[group] = append(s.byGroup[group], t)
	body, _ := json.Marshal(t)
	s.mu.Unlock()
	switch fault {
	case Created500:
		return errorAnswer(http.StatusInternalServerError, "api_error", "", "An unknown error occurred"), true
	case CreateThenDrop:
		a := answer{status: http.StatusOK, body: body}
		s.saveForDrop(r, a)
		return answer{drop: true}, false
	}
	return answer{status: http.StatusOK, body: body}, true
}

// saveForDrop saves the answer a dropped connection never delivered, as
// Stripe keeps it for the key whatever happened to the connection.
func (s *Server) saveForDrop(r *http.Request, a answer) {
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		s.mu.Lock()
		s.keys[key] = &saved{endpoint: r.Method + " " + r.URL.Path, params: r.PostForm.Encode(), status: a.status, body: a.body, at: s.now()}
		s.mu.Unlock()
	}
}

// listTransfers answers GET /v1/transfers: newest first, transfer_group,
// destination, created[gte|gt|lte|lt], limit, starting_after.
func (s *Server) listTransfers(q url.Values) answer {
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return errorAnswer(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "limit must be 1-100")
		}
		limit = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.transfers
	if g, ok := q["transfer_group"]; ok {
		src = s.byGroup[g[0]]
	}
	var out []any
	skipping := q.Get("starting_after") != ""
	hasMore := false
	for i := len(src) - 1; i >= 0; i-- {
		t := src[i]
		if skipping {
			skipping = t.ID != q.Get("starting_after")
			continue
		}
		if !createdIn(t.Created, q) || (q.Get("destination") != "" && t.Destination != q.Get("destination")) {
			continue
		}
		if len(out) == limit {
			hasMore = true
			break
		}
		out = append(out, *t)
	}
	if out == nil {
		out = []any{}
	}
	body, _ := json.Marshal(list{Object: "list", URL: "/v1/transfers", HasMore: hasMore, Data: out})
	return answer{status: http.StatusOK, body: body}
}

func createdIn(c int64, q url.Values) bool {
	for op, ok := range map[string]func(int64) bool{
		"gte": func(v int64) bool { return c >= v }, "gt": func(v int64) bool { return c > v },
		"lte": func(v int64) bool { return c <= v }, "lt": func(v int64) bool { return c < v },
	} {
		if s := q.Get("created[" + op + "]"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || !ok(v) {
				return false
			}
		}
	}
	return true
}

func (s *Server) getTransfer(id string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.transfers {
		if t.ID == id {
			body, _ := json.Marshal(t)
			return answer{status: http.StatusOK, body: body}
		}
	}
	return errorAnswer(http.StatusNotFound, "invalid_request_error", "resource_missing", "No such transfer: "+id)
}
