package devenv_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/testenv"
)

func TestEmbeddedNATSLogsOnlyWarningsUnlessDebug(t *testing.T) {
	for _, tc := range []struct {
		name   string
		level  slog.Level
		banner bool
	}{
		{name: "info", level: slog.LevelInfo, banner: false},
		{name: "debug", level: slog.LevelDebug, banner: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf testenv.LogBuffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			srv, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: t.TempDir()}, log)
			if err != nil {
				t.Fatal(err)
			}
			srv.Shutdown()
			srv.WaitForShutdown()
			got := strings.Contains(buf.String(), "Starting nats-server")
			if got != tc.banner {
				t.Fatalf("banner logged = %v, want %v; log:\n%s", got, tc.banner, buf.String())
			}
		})
	}
}
