package app

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
)

func apiConfig(t *testing.T, dsn string) *config.API {
	t.Helper()
	fake := apitest.NewStripe(t)
	cfg, err := config.ParseAPI(config.MapEnv(map[string]string{
		"DATABASE_URL": dsn, "API_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "DB_MAX_CONNS": "2",
		"API_KEYS": "app_test_key_0123456789", "STRIPE_SECRET_KEY": fake.Key, "STRIPE_API_BASE": fake.URL(),
		"API_SHUTDOWN_TIMEOUT": "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// The API refuses to serve on a database whose schema is not current.
func TestAPIRefusesAnOutdatedSchema(t *testing.T) {
	a, err := New(Config{API: apiConfig(t, testenv.PostgresURL(t))}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if !errors.Is(err, migrations.ErrSchemaOutdated) {
		t.Fatalf("Run on an empty database = %v, want ErrSchemaOutdated", err)
	}
}

// The API runs as a service of the App: Ready reports both its listeners,
// it answers an authenticated request, its admin listener is ready, and it
// stops cleanly when the context ends.
func TestAPIRunsThroughApp(t *testing.T) {
	_, dsn := testenv.DB(t)
	cfg := apiConfig(t, dsn)
	ready := make(chan Addrs, 1)
	a, err := New(Config{API: cfg}, testLogger(t), WithReady(func(addrs Addrs) { ready <- addrs }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run = %v before ready", err)
	case <-time.After(30 * time.Second):
		t.Fatal("api not ready after 30s")
	}
	if addrs.API.API == "" || addrs.API.Admin == "" || addrs.Edge.Public != "" || len(addrs.ProcessorAdmin) != 0 {
		t.Fatalf("addrs = %+v, want the API's two listeners only", addrs)
	}
	get := func(url, key string) int {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	access := "http://" + addrs.API.API + "/v1/customers/user_1/access/00000000-0000-4000-8000-000000000001"
	if code := get(access, cfg.API.Keys[0]); code != http.StatusOK {
		t.Errorf("access check = %d, want 200", code)
	}
	if code := get(access, ""); code != http.StatusUnauthorized {
		t.Errorf("access check without a key = %d, want 401", code)
	}
	if code := get("http://"+addrs.API.Admin+"/readyz", ""); code != http.StatusOK {
		t.Errorf("admin /readyz = %d, want 200", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("api did not stop 30s after cancel")
	}
}
