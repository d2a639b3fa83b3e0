package purchase

import (
	"context"

	"github.com/uptrace/bun"
)

// SetBeforeCommit installs f to run inside every batch transaction just
// before its commit, so a test can make the commit fail.
func SetBeforeCommit(h *Handler, f func(ctx context.Context, tx bun.Tx) error) { h.beforeCommit = f }

// BatchPath names how HandleBatch applies a batch, for tests.
type BatchPath = batchPath

// The batch paths tests can choose.
const (
	PathPerEvent       = pathPerEvent
	PathSetBased       = pathSetBased
	PathSetBasedAlways = pathSetBasedAlways
)

// SetBatchPath makes h apply batches by p.
func SetBatchPath(h *Handler, p BatchPath) { h.path = p }
