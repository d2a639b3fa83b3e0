package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
)

func TestRunFailsOnBadConfigBeforeConnecting(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		// The database URL points nowhere: reaching it would hang or fail differently.
		{"no keys", map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "DATABASE_URL": "postgres://192.0.2.1/x"}, "API_KEYS"},
		{"no stripe key", map[string]string{"API_KEYS": "k_0123456789abcdef", "DATABASE_URL": "postgres://192.0.2.1/x"}, "STRIPE_SECRET_KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), nil, config.MapEnv(tt.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if err := run(context.Background(), []string{"-x"}, config.MapEnv(nil), io.Discard, io.Discard); !errors.Is(err, errArgs) {
		t.Errorf("run with arguments = %v", err)
	}
}

// The real program serves the API and its admin listener and stops on
// cancel.
func TestRunServes(t *testing.T) {
	_, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{
		"DATABASE_URL": dsn, "API_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "API_KEYS": "k_0123456789abcdef",
		"STRIPE_SECRET_KEY": "sk_test_x", "API_SHUTDOWN_TIMEOUT": "5s",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan app.Listeners, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- runWith(ctx, nil, env, &logs, func(a app.Listeners) { addrs <- a }) }()
	var a app.Listeners
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not listening")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Public+"/v1/customers/u/purchases", nil)
	req.Header.Set("Authorization", "Bearer k_0123456789abcdef")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("API: %d", res.StatusCode)
	}
	res, err = http.Get("http://" + a.Admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("readyz: %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
