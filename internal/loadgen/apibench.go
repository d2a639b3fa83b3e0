package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/api"
)

// Defaults of APIBenchConfig.
const (
	DefaultAPIConcurrency   = 16               // requests in flight
	DefaultAPIDuration      = 10 * time.Second // per measured run
	DefaultAPICustomers     = 10000            // customers with access
	DefaultAPILedgerEntries = 1000000          // ledger entries under the payee route
)

// Routes RunAPIBench measures.
const (
	APIRouteAccess = "access" // GET /v1/customers/{customer}/access/{content}
	APIRoutePayee  = "payee"  // GET /v1/payees/{kind}/{id}
)

// apiBenchKey is the bearer key of the bench's API; it never leaves the run.
const apiBenchKey = "bench_key_0123456789abcdef"

// APIBenchConfig drives RunAPIBench (`paystream bench api`). Zero fields
// take the defaults of setDefaults.
type APIBenchConfig struct {
	// DatabaseURL names the Postgres server the scratch database is created
	// on (its database part is ignored). Required.
	DatabaseURL string
	Route       string        // APIRouteAccess (default) or APIRoutePayee
	Concurrency int           // requests in flight, and the API's pool size; default DefaultAPIConcurrency
	Duration    time.Duration // length of each measured run; default DefaultAPIDuration
	// Customers have access to the demo content (SeedAccess: purchases,
	// complimentary grants, subscriptions); a tenth as many more have
	// none. The access route only. At least 2; default DefaultAPICustomers.
	Customers int
	// LedgerEntries is how many ledger entries the payee route runs over
	// (SeedLedger). The payee route only; default DefaultAPILedgerEntries.
	LedgerEntries int
	// NetHTTP calls the API through net/http's client instead of the load
	// tool's own keep-alive client.
	NetHTTP bool
	// Exec is the command that runs the API process (ServeAPIChild); default
	// this executable as `bench api-server`.
	Exec []string
	// CPUProfile, when set, is where the API process writes its CPU profile
	// (the whole life of the process: seeding excluded, warm-ups included).
	CPUProfile string
	KeepDB     bool // leave the scratch database behind
	// AccessWorkers and AccessBatch set the API's API_ACCESS_WORKERS and
	// API_ACCESS_BATCH; 0 leaves the API's defaults.
	AccessWorkers, AccessBatch int
}

func (c *APIBenchConfig) setDefaults() {
	if c.Route == "" {
		c.Route = APIRouteAccess
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultAPIConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultAPIDuration
	}
	if c.Customers == 0 {
		c.Customers = DefaultAPICustomers
	}
	if c.LedgerEntries == 0 {
		c.LedgerEntries = DefaultAPILedgerEntries
	}
}

func (c *APIBenchConfig) validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("loadgen: api bench: DatabaseURL is required")
	case c.Route != APIRouteAccess && c.Route != APIRoutePayee:
		return fmt.Errorf("loadgen: api bench: Route %q is neither %s nor %s", c.Route, APIRouteAccess, APIRoutePayee)
	case c.Concurrency < 1 || c.Customers < 2:
		return fmt.Errorf("loadgen: api bench: Concurrency %d must be at least 1 and Customers %d at least 2",
			c.Concurrency, c.Customers)
	case c.LedgerEntries < 1:
		return fmt.Errorf("loadgen: api bench: LedgerEntries %d must be at least 1", c.LedgerEntries)
	case c.Duration < 0:
		return fmt.Errorf("loadgen: api bench: Duration %s must not be negative", c.Duration)
	}
	return nil
}

// apiTarget is what one route's bench runs: through the API and directly.
type apiTarget struct {
	api    func(context.Context, AccessConfig) (Result, error)
	direct func(context.Context, *pgxpool.Pool, AccessConfig) (Result, error)
}

// RunAPIBench measures one route of the purchase API against the same SQL
// run directly with pgx at the same concurrency, in one run on one scratch
// database on cfg.DatabaseURL's server, dropped afterwards unless
// cfg.KeepDB:
//   - the access check (APIRouteAccess): customers seeded by SeedAccess
//     (purchases, complimentary grants, subscriptions), the direct side
//     running the route's statement and decision (subscription.AccessQuery,
//     subscription.ScanAccess);
//   - the payee read (APIRoutePayee): a ledger of cfg.LedgerEntries entries
//     seeded by SeedLedger, the direct side running the route's two
//     statements (RunPayeeSQL).
//
// The API runs in a process of its own (cfg.Exec, ServeAPIChild), started
// through internal/app as cmd/api starts it, with its rate limit off, so
// the report gives the API's CPU time per request (from /proc, the API
// row's CPUPerRequest) apart from the load client's (this process, each
// row's ClientCPUPerRequest; on the direct row that is the pgx client).
// Progress lines and the API's warnings go to progress (nil = quiet).
func RunAPIBench(ctx context.Context, cfg APIBenchConfig, progress io.Writer) (Report, error) {
	if err := prepare(&cfg); err != nil {
		return Report{}, err
	}
	progress = orDiscard(progress)
	argv := cfg.Exec
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return Report{}, fmt.Errorf("loadgen: api bench: %w", err)
		}
		argv = []string{exe, "bench", "api-server"}
	}

	sdb, err := OpenDemoDatabase(ctx, cfg.DatabaseURL, cfg.KeepDB, 2)
	if err != nil {
		return Report{}, err
	}
	defer sdb.Close()
	client := "load tool's keep-alive HTTP/1.1"
	if cfg.NetHTTP {
		client = "net/http"
	}
	rep := Report{Kind: "api", Machine: Machine(), Extra: map[string]any{"route": cfg.Route, "http_client": client}}
	var target apiTarget
	switch cfg.Route {
	case APIRouteAccess:
		who, err := SeedAccess(ctx, sdb.DB, sdb.Purchase, cfg.Customers)
		if err != nil {
			return Report{}, err
		}
		rep.Extra["customers"] = len(who)
		rep.Extra["query"] = "subscription.AccessQuery"
		target = apiTarget{
			api: func(ctx context.Context, c AccessConfig) (Result, error) {
				c.Customers = who
				return RunAccessAPI(ctx, c)
			},
			direct: func(ctx context.Context, pool *pgxpool.Pool, c AccessConfig) (Result, error) {
				c.Customers = who
				return RunAccessSQL(ctx, pool, c)
			},
		}
		fmt.Fprintf(progress, "bench api: access check, %d customers, concurrency %d, %s per run, %s\n",
			len(who), cfg.Concurrency, cfg.Duration, rep.Machine)
	case APIRoutePayee:
		fmt.Fprintf(progress, "bench api: seeding %d ledger entries…\n", cfg.LedgerEntries)
		began := time.Now()
		seed, err := SeedLedger(ctx, sdb.DB, sdb.Purchase, cfg.LedgerEntries)
		if err != nil {
			return Report{}, err
		}
		rowQuery := PayeeRowQuery(sdb.DB)
		rep.Extra["ledger_entries"] = seed.Entries
		rep.Extra["purchases"] = seed.Purchases
		rep.Extra["payees_measured"] = len(seed.Hot)
		rep.Extra["query"] = "the payee's row (Bun's select of model.Payee) + api.PayeeBalancesQuery"
		rep.Extra["seed_seconds"] = time.Since(began).Round(time.Millisecond).Seconds()
		target = apiTarget{
			api: func(ctx context.Context, c AccessConfig) (Result, error) { return RunPayeeAPI(ctx, c, seed.Hot) },
			direct: func(ctx context.Context, pool *pgxpool.Pool, c AccessConfig) (Result, error) {
				return RunPayeeSQL(ctx, pool, rowQuery, c, seed.Hot)
			},
		}
		fmt.Fprintf(progress, "bench api: payee read, %d ledger entries (seeded in %s), %d payees, concurrency %d, %s per run, %s\n",
			seed.Entries, time.Since(began).Round(time.Second), len(seed.Hot), cfg.Concurrency, cfg.Duration, rep.Machine)
	}

	workers, batch := cmp.Or(cfg.AccessWorkers, api.DefaultAccessWorkers), cmp.Or(cfg.AccessBatch, api.DefaultAccessBatch)
	rep.Extra["access_workers"], rep.Extra["access_batch"] = workers, batch
	child, err := startAPIChild(ctx, argv, sdb.URL, cfg.Concurrency, cfg.CPUProfile, progress,
		"API_ACCESS_WORKERS="+strconv.Itoa(workers), "API_ACCESS_BATCH="+strconv.Itoa(batch))
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = child.stop() }() // a no-op after the stop below
	rep.Started = time.Now()
	acfg := AccessConfig{URL: "http://" + child.addr, Key: apiBenchKey, ContentID: sdb.Purchase.ContentID.String(),
		Concurrency: cfg.Concurrency, Duration: cfg.Duration, Progress: progress, NetHTTP: cfg.NetHTTP,
		Server: cpuMeter{PID: child.pid()}}
	// A short warm-up fills both pools and Postgres' cache.
	warm := acfg
	warm.Duration, warm.Progress, warm.Server = time.Second, nil, cpuMeter{}
	if _, err := target.api(ctx, warm); err != nil {
		return Report{}, err
	}
	batched := accessStatements{admin: child.admin}
	if err := batched.read(ctx); err != nil {
		return Report{}, err
	}
	apiRes, err := target.api(ctx, acfg)
	if err != nil {
		return Report{}, err
	}
	if cfg.Route == APIRouteAccess {
		if err := batched.read(ctx); err != nil {
			return Report{}, err
		}
		rep.Extra["access_statements"], rep.Extra["access_checks_per_statement"] = batched.statements, batched.perStatement()
	}
	rep.Results = append(rep.Results, apiRes)
	if err := child.stop(); err != nil {
		return Report{}, err
	}

	pcfg, err := pgxpool.ParseConfig(sdb.URL)
	if err != nil {
		return Report{}, err
	}
	pcfg.MaxConns = int32(cfg.Concurrency)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return Report{}, err
	}
	defer pool.Close()
	if _, err := target.direct(ctx, pool, warm); err != nil {
		return Report{}, err
	}
	direct, err := target.direct(ctx, pool, acfg)
	if err != nil {
		return Report{}, err
	}
	rep.Results = append(rep.Results, direct)
	if direct.PerSecond > 0 {
		rep.Ratio = apiRes.PerSecond / direct.PerSecond
	}
	us := func(d time.Duration) float64 {
		return float64(d.Round(100*time.Nanosecond)) / float64(time.Microsecond)
	}
	rep.Extra["api_cpu_us_per_request"] = us(apiRes.CPUPerRequest)
	rep.Extra["api_client_cpu_us_per_request"] = us(apiRes.ClientCPUPerRequest)
	rep.Extra["direct_client_cpu_us_per_query"] = us(direct.ClientCPUPerRequest)
	rep.Finished = time.Now()
	return rep, nil
}

// accessStatements follows the API's paystream_api_access_batch_size
// histogram over a run: read before and after, it holds the run's
// statements and the checks they answered.
type accessStatements struct {
	admin              string
	statements, checks float64 // since the previous read
	count, sum         float64 // the totals at the last read
}

func (a *accessStatements) read(ctx context.Context) error {
	count, err := scrape(ctx, "http://"+a.admin+"/metrics", "paystream_api_access_batch_size_count ")
	if err != nil {
		return fmt.Errorf("loadgen: api bench: the API's access statements: %w", err)
	}
	sum, err := scrape(ctx, "http://"+a.admin+"/metrics", "paystream_api_access_batch_size_sum ")
	if err != nil {
		return fmt.Errorf("loadgen: api bench: the API's access statements: %w", err)
	}
	a.statements, a.checks, a.count, a.sum = count-a.count, sum-a.sum, count, sum
	return nil
}

// perStatement is the mean checks per statement since the previous read.
func (a *accessStatements) perStatement() float64 {
	if a.statements == 0 {
		return 0
	}
	return math.Round(a.checks/a.statements*100) / 100
}
