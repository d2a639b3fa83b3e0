package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// createAccount executes POST /v1/accounts (type=express).
func (s *Server) createAccount(r *http.Request) (answer, bool) {
	f := r.Form
	if f.Get("type") != "express" {
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_empty", "type must be express"), false
	}
	s.mu.Lock()
	s.lastSeq++
	a := &Account{ID: fmt.Sprintf("acct_fake%08d", s.lastSeq), Metadata: formMap(f, "metadata"), Country: f.Get("country")}
	s.accounts[a.ID] = a
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]any{
		"id": a.ID, "object": "account", "type": "express", "metadata": a.Metadata, "country": a.Country,
		"charges_enabled": false, "payouts_enabled": false,
	})
	return answer{status: http.StatusOK, body: body}, true
}

// createLink answers POST /v1/account_links.
func (s *Server) createLink(f url.Values) answer {
	s.mu.Lock()
	_, ok := s.accounts[f.Get("account")]
	now := s.now()
	s.mu.Unlock()
	if !ok {
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such account: "+f.Get("account"))
	}
	if f.Get("refresh_url") == "" || f.Get("return_url") == "" || f.Get("type") != "account_onboarding" {
		return errorAnswer(http.StatusBadRequest, "invalid_request_error", "parameter_missing", "refresh_url, return_url and type are required")
	}
	body, _ := json.Marshal(map[string]any{
		"object": "account_link", "created": now.Unix(), "expires_at": now.Add(5 * time.Minute).Unix(),
		"url": "https://connect.stripe.test/setup/e/" + f.Get("account") + "/" + strconv.FormatInt(now.UnixNano(), 36),
	})
	return answer{status: http.StatusOK, body: body}
}
