package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/migrations"
)

func runMigrate(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: paystream migrate [up|status|rollback]   (default up)")
		fmt.Fprintln(stderr, "  up        apply every pending migration (under Bun's migration lock)")
		fmt.Fprintln(stderr, "  status    list migrations and whether each is applied")
		fmt.Fprintln(stderr, "  rollback  undo the last applied group")
		fmt.Fprintln(stderr, "env: DATABASE_URL")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	action := "up"
	if fs.NArg() > 0 {
		action = fs.Arg(0)
	}
	p := config.NewParser(getenv)
	dsn := p.URL("DATABASE_URL", config.DefaultDatabaseURL, "postgres", "postgresql")
	if err := p.Err(); err != nil {
		return err
	}
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer bdb.Close()
	switch action {
	case "up":
		g, err := migrations.Up(ctx, bdb)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "schema is up to date")
			return nil
		}
		fmt.Fprintf(stdout, "applied %s\n", g)
	case "status":
		ms, err := migrations.Status(ctx, bdb)
		if err != nil {
			return err
		}
		for _, m := range ms {
			state := "pending"
			if m.IsApplied() {
				state = fmt.Sprintf("applied (group %d, %s)", m.GroupID, m.MigratedAt.Format("2006-01-02 15:04:05"))
			}
			fmt.Fprintf(stdout, "%-40s %s\n", m.Name+"_"+m.Comment, state)
		}
		fmt.Fprintf(stdout, "%d applied, %d pending\n", len(ms.Applied()), len(ms.Unapplied()))
	case "rollback":
		g, err := migrations.Rollback(ctx, bdb)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "nothing to roll back")
			return nil
		}
		fmt.Fprintf(stdout, "rolled back %s\n", g)
	default:
		fs.Usage()
		return errUsage
	}
	return nil
}
