package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/loadgen"
)

// benchAPI measures access checks through the purchase API against the same
// SQL run directly with pgx, in one run on one scratch database
// (loadgen.RunAPIBench), and prints the report.
func benchAPI(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var c loadgen.APIBenchConfig
	fs := flag.NewFlagSet("bench api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Concurrency, "concurrency", loadgen.DefaultAPIConcurrency, "access checks in flight")
	fs.DurationVar(&c.Duration, "duration", loadgen.DefaultAPIDuration, "length of each measured run")
	fs.IntVar(&c.Customers, "customers", loadgen.DefaultAPICustomers, "customers with access (half purchased, half complimentary), plus 10% without")
	fs.BoolVar(&c.KeepDB, "keep-db", false, "keep the scratch database")
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
	if c.Concurrency < 1 || c.Customers < 2 {
		return fmt.Errorf("bench api: --concurrency must be at least 1 and --customers at least 2")
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	c.Log = benchLogger(getenv, common, stderr)
	c.DatabaseURL = common.DatabaseURL
	rep, err := loadgen.RunAPIBench(ctx, c, stderr)
	if err != nil {
		return err
	}
	return printBench(stdout, rep, *asJSON)
}
