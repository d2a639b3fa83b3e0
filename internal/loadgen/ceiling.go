package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Committed is a drain's output: every row version its transactions wrote
// (inserted rows, and the new versions of rows they updated, as the
// ledger's balances), per table, in COPY's binary format, and how many
// events wrote them. The COPY ceiling writes exactly these rows.
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

// RowMark is a point in the database's write history: the rows written
// after it are those whose inserting transaction is younger (xmin).
type RowMark struct{ xid uint32 }

// MarkRows returns a RowMark of now; take it before a drain.
func MarkRows(ctx context.Context, dsn string) (RowMark, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return RowMark{}, err
	}
	defer conn.Close(ctx)
	var xid int64
	if err := conn.QueryRow(ctx, "SELECT txid_current() % 4294967296").Scan(&xid); err != nil {
		return RowMark{}, err
	}
	return RowMark{xid: uint32(xid)}, nil
}

// SnapshotCommitted reads, with one COPY … TO per table, the rows of every
// table of the public schema (the migrations' own excepted) written after
// mark by the drain of events events. Comparing ages rather than xids
// keeps it right across a wraparound.
func SnapshotCommitted(ctx context.Context, dsn string, mark RowMark, events int) (*Committed, error) {
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
	c := &Committed{Events: events}
	for _, t := range names {
		var buf bytes.Buffer
		q := fmt.Sprintf("COPY (SELECT * FROM public.%s WHERE age(xmin) < age('%d'::xid)) TO STDOUT (FORMAT binary)",
			pgx.Identifier{t}.Sanitize(), mark.xid)
		tag, err := conn.PgConn().CopyTo(ctx, &buf, q)
		if err != nil {
			return nil, fmt.Errorf("copy %s out: %w", t, err)
		}
		if tag.RowsAffected() > 0 {
			c.Tables = append(c.Tables, CommittedTable{Name: t, Rows: tag.RowsAffected(), data: buf.Bytes()})
		}
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
