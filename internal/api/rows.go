package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// selectOne runs q, a select of at most one row into dest, and returns
// dest, or nil when no row matched; what names the lookup in an error.
func selectOne[T any](ctx context.Context, q *bun.SelectQuery, dest *T, what string) (*T, error) {
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return dest, nil
}

// insertOrLoad records row, whose primary key id is Stripe's; when the id
// is already recorded (Stripe replayed an idempotent create) it returns
// the stored row instead.
func insertOrLoad[T any](ctx context.Context, idb bun.IDB, row *T, id, what string) (*T, error) {
	res, err := idb.NewInsert().Model(row).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("record %s %s: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return row, nil
	}
	got := new(T)
	if err := idb.NewSelect().Model(got).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load %s %s: %w", what, id, err)
	}
	return got, nil
}
