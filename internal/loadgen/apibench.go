package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/demo"
)

// Defaults of APIBenchConfig.
const (
	DefaultAPIConcurrency = 16               // access checks in flight
	DefaultAPIDuration    = 10 * time.Second // per measured run
	DefaultAPICustomers   = 10000            // customers with access
)

// apiBenchKey is the bearer key of the bench's API; it never leaves the run.
const apiBenchKey = "bench_key_0123456789abcdef"

// APIBenchConfig drives RunAPIBench (`paystream bench api`). Zero fields
// take the defaults of setDefaults.
type APIBenchConfig struct {
	// DatabaseURL names the Postgres server the scratch database is created
	// on (its database part is ignored). Required.
	DatabaseURL string
	Concurrency int           // access checks in flight, and the API's pool size; default DefaultAPIConcurrency
	Duration    time.Duration // length of each measured run; default DefaultAPIDuration
	// Customers have access to the demo content (half purchased, half
	// complimentary); a tenth as many more have none. At least 2; default
	// DefaultAPICustomers.
	Customers int
	KeepDB    bool         // leave the scratch database behind
	Log       *slog.Logger // the API's log; nil = discarded
}

func (c *APIBenchConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultAPIConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultAPIDuration
	}
	if c.Customers == 0 {
		c.Customers = DefaultAPICustomers
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

func (c *APIBenchConfig) validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("loadgen: api bench: DatabaseURL is required")
	case c.Concurrency < 1 || c.Customers < 2:
		return fmt.Errorf("loadgen: api bench: Concurrency %d must be at least 1 and Customers %d at least 2",
			c.Concurrency, c.Customers)
	case c.Duration < 0:
		return fmt.Errorf("loadgen: api bench: Duration %s must not be negative", c.Duration)
	}
	return nil
}

// RunAPIBench measures access checks through the purchase API against the
// same SQL (api.AccessQuery) run directly with pgx at the same concurrency,
// in one run on one scratch database on cfg.DatabaseURL's server, dropped
// afterwards unless cfg.KeepDB. The API starts through internal/app, as
// cmd/api starts it, with its rate limit off. Progress lines go to progress
// (nil = quiet).
func RunAPIBench(ctx context.Context, cfg APIBenchConfig, progress io.Writer) (Report, error) {
	if err := prepare(&cfg); err != nil {
		return Report{}, err
	}
	progress = orDiscard(progress)

	// The demo catalog, and customers with and without access to its content.
	sdb, err := OpenDemoDatabase(ctx, cfg.DatabaseURL, cfg.KeepDB, 2)
	if err != nil {
		return Report{}, err
	}
	defer sdb.Close()
	who, err := SeedAccess(ctx, sdb.DB, sdb.Purchase, cfg.Customers)
	if err != nil {
		return Report{}, err
	}
	dsn := sdb.URL

	g, err := startApp(ctx, []app.Service{apiservice.New(apiconfig.Config{
		Common:     config.Common{DatabaseURL: dsn},
		DBMaxConns: cfg.Concurrency,
		Config: api.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Keys: []string{apiBenchKey},
			StripeSecretKey: "sk_test_bench_unused", RateLimit: 0},
	})}, cfg.Log)
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = g.stop() }() // a no-op after the stop below

	acfg := AccessConfig{URL: "http://" + g.addrs.API.Public, Key: apiBenchKey, ContentID: demo.ContentID, Customers: who,
		Concurrency: cfg.Concurrency, Duration: cfg.Duration, Progress: progress}
	rep := Report{Kind: "api", Machine: Machine(), Started: time.Now(),
		Extra: map[string]any{"customers": len(who), "query": "api.AccessQuery"}}
	fmt.Fprintf(progress, "bench api: %d customers, concurrency %d, %s per run, %s\n",
		len(who), cfg.Concurrency, cfg.Duration, rep.Machine)
	// A short warm-up fills both pools and Postgres' cache.
	warm := acfg
	warm.Duration, warm.Progress = time.Second, nil
	if _, err := RunAccessAPI(ctx, warm); err != nil {
		return Report{}, err
	}
	apiRes, err := RunAccessAPI(ctx, acfg)
	if err != nil {
		return Report{}, err
	}
	rep.Results = append(rep.Results, apiRes)

	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return Report{}, err
	}
	pcfg.MaxConns = int32(cfg.Concurrency)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return Report{}, err
	}
	defer pool.Close()
	if _, err := RunAccessSQL(ctx, pool, api.AccessQuery, warm); err != nil {
		return Report{}, err
	}
	direct, err := RunAccessSQL(ctx, pool, api.AccessQuery, acfg)
	if err != nil {
		return Report{}, err
	}
	rep.Results = append(rep.Results, direct)
	if direct.PerSecond > 0 {
		rep.Ratio = apiRes.PerSecond / direct.PerSecond
	}
	rep.Finished = time.Now()
	if err := g.stop(); err != nil {
		return Report{}, err
	}
	return rep, nil
}
