//go:build !linux

package devenv

import (
	"context"
	"errors"
	"log/slog"
)

// StartTiedCluster needs Linux's parent-death signal to tie the cluster's
// life to this process; elsewhere it refuses rather than leave a server
// running.
func StartTiedCluster(ctx context.Context, dir string, log *slog.Logger) (*Postgres, error) {
	return nil, errors.New("a private Postgres cluster that stops with its process needs Linux")
}
