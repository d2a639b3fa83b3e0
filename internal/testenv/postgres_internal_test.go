package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/devenv"
)

// locate's order, and what it says when there is no server: one line
// naming what is missing.
func TestLocate(t *testing.T) {
	const custom = "postgres://postgres@127.0.0.1:6543/postgres?sslmode=disable"
	const started = "postgres://postgres@/postgres?host=%2Ftmp%2Fslot-0"
	tests := []struct {
		name     string
		env      string
		up       []string // the URLs that answer
		startErr error    // nil: start succeeds
		noStart  bool     // -short: start is nil
		want     string   // the URL, or a fragment of the error
		wantErr  bool
		started  bool // start was called
	}{
		{name: "default answers", up: []string{DefaultAdminURL}, want: DefaultAdminURL},
		{name: "env answers", env: custom, up: []string{custom, DefaultAdminURL}, want: custom},
		{name: "env does not answer: no fallback", env: custom, up: []string{DefaultAdminURL},
			want: EnvServerURL + "=postgres://postgres@127.0.0.1:6543/postgres?sslmode=disable does not answer", wantErr: true},
		{name: "nothing answers: private cluster", want: started, started: true},
		{name: "private asked for", env: PrivateServer, up: []string{DefaultAdminURL}, want: started, started: true},
		{name: "nothing answers under -short", noStart: true, want: "-short starts no private cluster", wantErr: true},
		{name: "no binaries", startErr: devenv.ErrNoPostgres, started: true, wantErr: true,
			want: "nothing answers at postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable (connection refused), " +
				"and Postgres's binaries (initdb, postgres) are not installed"},
		{name: "cluster fails", startErr: errors.New("initdb: exit status 1:\nsome\noutput"), started: true, wantErr: true,
			want: "the private cluster did not start: initdb: exit status 1: some output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ping := func(u string) error {
				for _, up := range tt.up {
					if u == up {
						return nil
					}
				}
				return fmt.Errorf("connection refused")
			}
			calls := 0
			start := func() (string, error) {
				calls++
				if tt.startErr != nil {
					return "", tt.startErr
				}
				return started, nil
			}
			if tt.noStart {
				start = nil
			}
			got, err := locate(func(k string) string {
				if k == EnvServerURL {
					return tt.env
				}
				return ""
			}, ping, start)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("locate = %q, %v; want one line containing %q", got, err, tt.want)
				}
			} else if err != nil || got != tt.want {
				t.Errorf("locate = %q, %v; want %q", got, err, tt.want)
			}
			if (calls > 0) != tt.started {
				t.Errorf("start called %d times, want called: %v", calls, tt.started)
			}
		})
	}
}

// One binary per slot: a second lock takes the next slot; a released slot
// is taken again.
func TestAcquireSlot(t *testing.T) {
	base := t.TempDir()
	a, dirA, err := acquireSlot(base)
	if err != nil {
		t.Fatal(err)
	}
	b, dirB, err := acquireSlot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if filepath.Base(dirA) != "slot-0" || filepath.Base(dirB) != "slot-1" {
		t.Fatalf("slots %s, %s; want slot-0, slot-1", dirA, dirB)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c, dirC, err := acquireSlot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if dirC != dirA {
		t.Errorf("after release: %s, want %s again", dirC, dirA)
	}
}

// The private cluster a test binary starts answers and takes databases.
func TestStartPrivate(t *testing.T) {
	if _, err := exec.LookPath("initdb"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
			t.Skip("postgres binaries not installed")
		}
	}
	if testing.Short() {
		t.Skip("starts a postgres cluster")
	}
	u, err := startPrivate()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	name := "paystream_test_" + randHex(6)
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "DROP DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "host=") || !strings.Contains(u, os.TempDir()[1:]) && !strings.Contains(u, strings.ReplaceAll(os.TempDir(), "/", "%2F")) {
		t.Errorf("URL %s is not on a socket in the temp directory", u)
	}
}
