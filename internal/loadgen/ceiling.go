package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Committed is a drain's output: every table of the public schema whose row
// count the drain changed, with all of its rows in COPY's binary format, and
// how many events wrote them. The COPY ceiling writes exactly these rows.
type Committed struct {
	Events int
	Tables []CommittedTable
}

// CommittedTable is one table of Committed.
type CommittedTable struct {
	Name string
	Rows int64
	data []byte
}

// TableCounts counts the rows of every table of the public schema but the
// migrations' own, so that the tables a drain writes are the ones whose
// count it changes.
func TableCounts(ctx context.Context, dsn string) (map[string]int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables
		WHERE schemaname = 'public' AND tablename NOT LIKE 'bun_migration%' ORDER BY tablename`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	for _, t := range names {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM public."+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// SnapshotCommitted reads, with one COPY … TO per table, every table whose
// count differs from before (TableCounts taken before the drain of events
// events). Updated rows of tables that kept their count (the ledger's
// balances after their first posting) are not rows the drain added, and
// are not copied.
func SnapshotCommitted(ctx context.Context, dsn string, before map[string]int64, events int) (*Committed, error) {
	after, err := TableCounts(ctx, dsn)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	c := &Committed{Events: events}
	for _, t := range slices.Sorted(maps.Keys(after)) {
		if after[t] == before[t] {
			continue
		}
		var buf bytes.Buffer
		tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY public."+pgx.Identifier{t}.Sanitize()+" TO STDOUT (FORMAT binary)")
		if err != nil {
			return nil, fmt.Errorf("copy %s out: %w", t, err)
		}
		c.Tables = append(c.Tables, CommittedTable{Name: t, Rows: tag.RowsAffected(), data: buf.Bytes()})
	}
	return c, nil
}

// CopyCeiling is the physical ceiling of a drain: the rows it committed
// (snap), written again into empty copies of their tables (same columns,
// defaults, checks and indexes; no foreign keys, no triggers) in a scratch
// schema, with one COPY … FROM per table, the tables in parallel on their
// own connections, no logic. Its rate counts snap.Events. It returns the
// rows each copy holds afterwards (counted after the timing), then drops
// the schema.
func CopyCeiling(ctx context.Context, dsn string, snap *Committed, cpu CPUSampler) (Result, map[string]int64, error) {
	if snap == nil || len(snap.Tables) == 0 || snap.Events < 1 {
		return Result{}, nil, fmt.Errorf("copy ceiling: nothing committed to copy")
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Result{}, nil, err
	}
	defer admin.Close(ctx)
	schema := pgx.Identifier{"ceiling_" + strconv.FormatInt(time.Now().UnixNano(), 36)}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return Result{}, nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = admin.Exec(dctx, "DROP SCHEMA "+schema+" CASCADE")
	}()
	conns := make([]*pgx.Conn, len(snap.Tables))
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close(context.Background())
			}
		}
	}()
	for i, t := range snap.Tables {
		id := pgx.Identifier{t.Name}.Sanitize()
		if _, err := admin.Exec(ctx, "CREATE TABLE "+schema+"."+id+" (LIKE public."+id+
			" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING GENERATED)"); err != nil {
			return Result{}, nil, fmt.Errorf("copy ceiling: table %s: %w", t.Name, err)
		}
		if conns[i], err = pgx.Connect(ctx, dsn); err != nil {
			return Result{}, nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(snap.Tables))
	before := cpu.sample()
	start := time.Now()
	for i, t := range snap.Tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sql := "COPY " + schema + "." + pgx.Identifier{t.Name}.Sanitize() + " FROM STDIN (FORMAT binary)"
			tag, err := conns[i].PgConn().CopyFrom(ctx, bytes.NewReader(t.data), sql)
			if err == nil && tag.RowsAffected() != t.Rows {
				err = fmt.Errorf("%d rows copied, %d read", tag.RowsAffected(), t.Rows)
			}
			if err != nil {
				errs[i] = fmt.Errorf("copy ceiling: %s: %w", t.Name, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := cpu.sample()
	for _, err := range errs {
		if err != nil {
			return Result{}, nil, err
		}
	}
	got := make(map[string]int64, len(snap.Tables))
	for _, t := range snap.Tables {
		var n int64
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM "+schema+"."+pgx.Identifier{t.Name}.Sanitize()).Scan(&n); err != nil {
			return Result{}, nil, err
		}
		got[t.Name] = n
	}
	res := Result{Name: "copy-ceiling", Concurrency: len(snap.Tables), Requests: snap.Events, Elapsed: elapsed,
		PerSecond: float64(snap.Events) / elapsed.Seconds(), CPU: cpu.perEvent(before, after, snap.Events)}
	return res, got, nil
}
