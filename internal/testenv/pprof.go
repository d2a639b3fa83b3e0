package testenv

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// FetchCPUProfile takes a CPU profile of seconds from the admin listener at
// base (e.g. http://127.0.0.1:9090) and returns its bytes (a gzipped pprof
// protobuf). It fails tb on any error; tests of running services use it.
func FetchCPUProfile(tb testing.TB, base string, seconds int) []byte {
	tb.Helper()
	c := &http.Client{Timeout: time.Duration(seconds)*time.Second + 30*time.Second}
	resp, err := c.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds))
	if err != nil {
		tb.Fatalf("CPU profile from %s: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("CPU profile from %s: %v", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("CPU profile from %s: %d %s", base, resp.StatusCode, b)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		tb.Fatalf("CPU profile from %s: not a gzipped profile (%d bytes)", base, len(b))
	}
	return b
}
