package obs

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/testenv"
)

// startAdmin serves AdminHandler on a random port and returns its base URL.
func startAdmin(t *testing.T) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv, err := Listen("127.0.0.1:0", AdminHandler(NewRegistry(), nil, log), log)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + srv.Addr()
}

func TestAdminServesCPUProfile(t *testing.T) {
	base := startAdmin(t)
	body := testenv.FetchCPUProfile(t, base, 1)
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("CPU profile is not gzip (a pprof protobuf): %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || len(raw) == 0 {
		t.Fatalf("CPU profile: %d bytes, %v", len(raw), err)
	}
}

func TestAdminServesPprofIndexAndHeap(t *testing.T) {
	base := startAdmin(t)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, resp.StatusCode, len(b))
		}
	}
}

func TestDefaultCPUProfileFitsTheWriteTimeout(t *testing.T) {
	// go tool pprof asks for 30 s by default; pprof refuses a duration at or
	// above the server's WriteTimeout.
	srv, err := Listen("127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.ln.Close()
	if wt := srv.HTTP().WriteTimeout; wt <= 30*time.Second {
		t.Fatalf("admin WriteTimeout %s: a default 30s CPU profile would be refused", wt)
	}
}
