package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/loadgen"
)

// benchAPI measures one route of the purchase API (the access check, or
// the payee read over a large ledger) against the same SQL run directly
// with pgx, in one run on one scratch database (loadgen.RunAPIBench), and
// prints the report.
func benchAPI(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var c loadgen.APIBenchConfig
	fs := flag.NewFlagSet("bench api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Route, "route", loadgen.APIRouteAccess,
		"route to measure: access (GET /v1/customers/{c}/access/{content}) or payee (GET /v1/payees/{kind}/{id})")
	fs.IntVar(&c.Concurrency, "concurrency", loadgen.DefaultAPIConcurrency, "requests in flight (and the API's pool size)")
	fs.DurationVar(&c.Duration, "duration", loadgen.DefaultAPIDuration, "length of each measured run")
	fs.IntVar(&c.Customers, "customers", loadgen.DefaultAPICustomers,
		"access route: customers with access (half purchased, a tenth complimentary, the rest through a subscription only), plus 10% without")
	fs.IntVar(&c.LedgerEntries, "ledger-entries", loadgen.DefaultAPILedgerEntries,
		"payee route: ledger entries seeded (sale postings over 16 measured creators, their organization and 5000 other creators)")
	fs.BoolVar(&c.NetHTTP, "net-http", false, "call the API through net/http's client instead of the load tool's own keep-alive client")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write the API process's CPU profile to this file (go tool pprof)")
	fs.BoolVar(&c.KeepDB, "keep-db", false, "keep the scratch database")
	fs.IntVar(&c.AccessWorkers, "access-workers", api.DefaultAccessWorkers, "access route: the API's API_ACCESS_WORKERS (statements at once)")
	fs.IntVar(&c.AccessBatch, "access-batch", api.DefaultAccessBatch, "access route: the API's API_ACCESS_BATCH (checks per statement at most; 1 = one each)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench api [--route access|payee] [flags]",
		"creates a scratch database on DATABASE_URL's server and seeds it (access: customers with access through",
		"purchases, complimentary grants and subscriptions; payee: --ledger-entries valid ledger entries), starts the",
		"purchase API in a process of its own (this executable, through internal/app as cmd/api starts it), drives the",
		"route at --concurrency for --duration, then runs the route's own SQL directly with pgx at the same concurrency,",
		"and prints api ÷ direct with each side's p50/p90/p99, the API process's CPU per request (from /proc) and the",
		"load client's own CPU per request (the direct row: the pgx client's per query). The database is dropped afterwards.",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.Concurrency < 1 || c.Customers < 2 || c.LedgerEntries < 1 {
		return fmt.Errorf("bench api: --concurrency must be at least 1, --customers at least 2 and --ledger-entries at least 1")
	}
	if c.AccessWorkers < 1 || c.AccessWorkers > api.MaxAccessWorkers || c.AccessBatch < 1 || c.AccessBatch > api.MaxAccessBatch {
		return fmt.Errorf("bench api: --access-workers must be between 1 and %d, --access-batch between 1 and %d", api.MaxAccessWorkers, api.MaxAccessBatch)
	}
	if c.Route != loadgen.APIRouteAccess && c.Route != loadgen.APIRoutePayee {
		return fmt.Errorf("bench api: --route must be %s or %s", loadgen.APIRouteAccess, loadgen.APIRoutePayee)
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	c.DatabaseURL = common.DatabaseURL
	rep, err := loadgen.RunAPIBench(ctx, c, stderr)
	if err != nil {
		return err
	}
	return printBench(stdout, rep, *asJSON)
}

// benchAPIServer is the API process `bench api` starts (hidden: it runs
// only with the settings the bench passes in its environment).
func benchAPIServer(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("bench api-server takes no arguments; `paystream bench api` starts it")
	}
	return loadgen.ServeAPIChild(ctx, getenv, os.Stdin, stdout, stderr)
}
