package purchase

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
)

// SetBeforeCommit installs f to run inside every batch transaction just
// before its commit, so a test can make the commit fail.
func SetBeforeCommit(h *Handler, f func(ctx context.Context, tx bun.Tx) error) {
	h.reconfigure(func(c *eventtx.Config) { c.BeforeCommit = f })
}

// BatchPath names how HandleBatch applies a batch, for tests.
type BatchPath = eventtx.BatchPath

// The batch paths tests can choose.
const (
	PathPerEvent       = eventtx.BatchPerEvent
	PathSetBased       = eventtx.BatchSetBased
	PathSetBasedAlways = eventtx.BatchSetBasedAlways
)

// SetBatchPath makes h apply batches by p.
func SetBatchPath(h *Handler, p BatchPath) {
	h.reconfigure(func(c *eventtx.Config) { c.Batch = p })
}

// reconfigure rebuilds h's lifecycle with its configuration changed by f.
func (h *Handler) reconfigure(f func(*eventtx.Config)) {
	f(&h.cfg)
	tx, err := eventtx.New(h.db, h.cfg, h.log, h.fam)
	if err != nil {
		panic(err) // the same families were accepted when h was made
	}
	h.Handler = tx
}
