package purchase

import (
	"context"

	"github.com/uptrace/bun"
)

// SetBeforeCommit installs f to run inside every batch transaction just
// before its commit, so a test can make the commit fail.
func SetBeforeCommit(h *Handler, f func(ctx context.Context, tx bun.Tx) error) { h.beforeCommit = f }
