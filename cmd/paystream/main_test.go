package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/paystream/paystream/internal/loadgen"
)

// TestMain lets this test binary be the API process of `bench api`: the
// bench re-executes its own executable (here the test binary) with
// `bench api-server` and loadgen.APIChildEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(loadgen.APIChildEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, []string{"bench", "api-server"}, os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "paystream:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
