package apiservice_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/api/apitest"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/migrations"
)

const apiKey = "app_test_key_0123456789"

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if os.Getenv("PAYSTREAM_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func apiConfig(t *testing.T, dsn string) apiconfig.Config {
	t.Helper()
	fake := apitest.NewStripe(t)
	cfg, err := apiconfig.Parse(config.MapEnv(map[string]string{
		"DATABASE_URL": dsn, "API_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "DB_MAX_CONNS": "2",
		"API_KEYS": apiKey, "STRIPE_SECRET_KEY": fake.Key, "STRIPE_API_BASE": fake.URL(),
		"API_SHUTDOWN_TIMEOUT": "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The API refuses to serve on a database whose schema is not current.
func TestAPIRefusesAnOutdatedSchema(t *testing.T) {
	a, err := app.New([]app.Service{apiservice.New(apiConfig(t, testenv.PostgresURL(t)))}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if !errors.Is(err, migrations.ErrSchemaOutdated) {
		t.Fatalf("Run on an empty database = %v, want ErrSchemaOutdated", err)
	}
}

// The API runs as a service of the App: Ready reports both its listeners,
// it answers an authenticated request (and only on its own listener, the
// metrics only on the admin one), its admin listener is ready and exports
// its metrics, and it stops cleanly when the context ends.
func TestAPIRunsThroughApp(t *testing.T) {
	_, dsn := testenv.DB(t)
	ready := make(chan app.Addrs, 1)
	a, err := app.New([]app.Service{apiservice.New(apiConfig(t, dsn))}, testLogger(t), app.WithReady(func(addrs app.Addrs) { ready <- addrs }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var addrs app.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run = %v before ready", err)
	case <-time.After(30 * time.Second):
		t.Fatal("api not ready after 30s")
	}
	if addrs.API.Public == "" || addrs.API.Admin == "" || addrs.Edge.Public != "" || len(addrs.ProcessorAdmin) != 0 {
		t.Fatalf("addrs = %+v, want the API's two listeners only", addrs)
	}
	// The environment named no GOGC: the service set the API's.
	if gogc := debug.SetGCPercent(100); gogc != api.DefaultGCPercent {
		t.Errorf("GOGC = %d, want the API's default %d", gogc, api.DefaultGCPercent)
	}
	get := func(url, key string) (int, string) {
		t.Helper()
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
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	access := "http://" + addrs.API.Public + "/v1/customers/user_1/access/00000000-0000-4000-8000-000000000001"
	if code, _ := get(access, apiKey); code != http.StatusOK {
		t.Errorf("access check = %d, want 200", code)
	}
	if code, _ := get(access, ""); code != http.StatusUnauthorized {
		t.Errorf("access check without a key = %d, want 401", code)
	}
	if code, body := get("http://"+addrs.API.Public+"/v1/customers/u/purchases", apiKey); code != 200 || !strings.Contains(body, `"has_more":false`) {
		t.Errorf("purchases: %d %s", code, body)
	}
	if code, _ := get("http://"+addrs.API.Public+"/metrics", apiKey); code != 404 {
		t.Errorf("/metrics on the API listener: %d, want 404", code)
	}
	if code, body := get("http://"+addrs.API.Admin+"/readyz", ""); code != http.StatusOK {
		t.Errorf("admin /readyz = %d %s, want 200", code, body)
	}
	if code, body := get("http://"+addrs.API.Admin+"/metrics", ""); code != 200 || !strings.Contains(body, "paystream_api_requests_total") {
		t.Errorf("admin /metrics: %d, want the API's series", code)
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
