package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/migrations"
)

// benchAPI measures access checks through the purchase API against the same
// SQL run directly with pgx, in one run on one scratch database.
func benchAPI(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conc := fs.Int("concurrency", 16, "access checks in flight")
	dur := fs.Duration("duration", 10*time.Second, "length of each measured run")
	customers := fs.Int("customers", 10000, "customers with access (half purchased, half complimentary), plus 10% without")
	keepDB := fs.Bool("keep-db", false, "keep the scratch database")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	setUsage(fs, stderr,
		"usage: paystream bench api [flags]",
		"starts the purchase API in-process on a scratch database, drives GET /v1/customers/{c}/access/{content}",
		"at --concurrency for --duration, then runs the same SQL directly with pgx at the same concurrency, and",
		"prints api ÷ direct. env: DATABASE_URL (a scratch database is created on that server and dropped afterwards)",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *conc < 1 || *customers < 2 {
		return fmt.Errorf("bench api: --concurrency must be at least 1 and --customers at least 2")
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	dsn, dropDB, err := scratchDatabase(ctx, common.DatabaseURL)
	if err != nil {
		return err
	}
	if !*keepDB {
		defer dropDB()
	}
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: *conc})
	if err != nil {
		return err
	}
	defer bdb.Close()
	if _, err := migrations.Up(ctx, bdb); err != nil {
		return err
	}
	plan, err := seedOptions{content: demo.ContentID, org: demo.OrganizationID, creator: demo.CreatorID,
		currency: demo.Currency, price: demo.PriceCents, platformBps: 1000}.plan()
	if err != nil {
		return err
	}
	if err := seed(ctx, bdb, plan, io.Discard); err != nil {
		return err
	}
	who, err := loadgen.SeedAccess(ctx, bdb, demo.ContentID, demo.OrganizationID, demo.PriceCents, demo.Currency, *customers)
	if err != nil {
		return err
	}

	// The API, in this process, without a rate limit.
	const key = "bench_key_0123456789abcdef"
	reg := prometheus.NewRegistry()
	srv, err := api.New(bdb, api.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Keys: []string{key},
		StripeSecretKey: "sk_test_bench_unused", RateLimit: 0}, reg, obs.NewLogger(io.Discard, slog.LevelError, "api"))
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrs := make(chan api.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx, reg, func(a api.Addrs) { addrs <- a }) }()
	var a api.Addrs
	select {
	case a = <-addrs:
	case err := <-done:
		return err
	}

	cfg := loadgen.AccessConfig{URL: "http://" + a.API, Key: key, ContentID: demo.ContentID, Customers: who,
		Concurrency: *conc, Duration: *dur, Progress: stderr}
	rep := benchReport{Kind: "api", Machine: machine(), Started: time.Now(),
		Extra: map[string]any{"customers": len(who), "query": "api.AccessQuery"}}
	fmt.Fprintf(stderr, "bench api: %d customers, concurrency %d, %s per run, %s\n", len(who), *conc, *dur, rep.Machine)
	// A short warm-up fills both pools and Postgres' cache.
	warm := cfg
	warm.Duration, warm.Progress = time.Second, nil
	if _, err := loadgen.RunAccessAPI(ctx, warm); err != nil {
		return err
	}
	apiRes, err := loadgen.RunAccessAPI(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, apiRes)

	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(*conc)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := loadgen.RunAccessSQL(ctx, pool, api.AccessQuery, warm); err != nil {
		return err
	}
	direct, err := loadgen.RunAccessSQL(ctx, pool, api.AccessQuery, cfg)
	if err != nil {
		return err
	}
	rep.Results = append(rep.Results, direct)
	if direct.PerSecond > 0 {
		rep.Ratio = apiRes.PerSecond / direct.PerSecond
	}
	rep.Finished = time.Now()
	stop()
	if err := <-done; err != nil {
		return err
	}
	return printBench(stdout, rep, *asJSON)
}
