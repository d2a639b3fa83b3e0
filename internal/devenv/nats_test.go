package devenv

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer the server's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
			var buf lockedBuffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			srv, err := StartNATS(NATSOptions{StoreDir: t.TempDir()}, log)
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
