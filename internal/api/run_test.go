package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/testenv"
)

// Run serves the API and the admin endpoints on their own listeners and
// stops cleanly when its context ends.
func TestRunServesAPIAndAdmin(t *testing.T) {
	bdb, _ := testenv.DB(t)
	reg := prometheus.NewRegistry()
	srv, err := api.New(bdb, api.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Keys: []string{keyA},
		StripeSecretKey: "sk_test_x", ShutdownTimeout: 5 * time.Second}, reg, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan api.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, reg, func(a api.Addrs) { addrs <- a }) }()
	var a api.Addrs
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	get := func(url, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("http://"+a.API+"/v1/customers/u/purchases", keyA); code != 200 || !strings.Contains(body, `"has_more":false`) {
		t.Errorf("API: %d %s", code, body)
	}
	if code, _ := get("http://"+a.API+"/metrics", keyA); code != 404 {
		t.Errorf("/metrics on the API listener: %d, want 404", code)
	}
	if code, body := get("http://"+a.Admin+"/readyz", ""); code != 200 {
		t.Errorf("readyz: %d %s", code, body)
	}
	if code, body := get("http://"+a.Admin+"/metrics", ""); code != 200 || !strings.Contains(body, "paystream_api_requests_total") {
		t.Errorf("metrics: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
