package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// ErrReadOnly means the server answers but is a hot standby: after a
// failover the old primary (or a replica the DNS name still points at)
// refuses every write with SQLSTATE 25006.
var ErrReadOnly = errors.New("postgres is in recovery (read-only)")

// Probe reports whether idb can take writes now: one round trip that fails
// when no connection can be made and reports a read-only server as
// ErrReadOnly. The processor's database circuit breaker closes on its first
// nil.
func Probe(ctx context.Context, idb bun.IDB) error {
	var inRecovery bool
	if err := idb.NewRaw("SELECT pg_is_in_recovery()").Scan(ctx, &inRecovery); err != nil {
		return fmt.Errorf("probe postgres: %w", err)
	}
	if inRecovery {
		return ErrReadOnly
	}
	return nil
}
