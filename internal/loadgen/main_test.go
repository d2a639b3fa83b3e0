package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/paystream/paystream/internal/loadgen"
)

// TestMain lets this test binary be the API process of RunAPIBench (its
// tests run it as APIBenchConfig.Exec).
func TestMain(m *testing.M) {
	if os.Getenv(loadgen.APIChildEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := loadgen.ServeAPIChild(ctx, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "api child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
