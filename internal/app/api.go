package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/migrations"
)

// runAPI is the purchase API service: open its pool, check the schema is
// current, serve until ctx ends (in-flight requests finish), then close the
// pool. ready gets the bound addresses.
func runAPI(ctx context.Context, cfg config.API, log *slog.Logger, ready func(api.Addrs)) (err error) {
	bdb, err := db.Open(ctx, cfg.DatabaseURL, db.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, bdb.Close()) }()
	if err := migrations.Current(ctx, bdb); err != nil {
		return err
	}
	reg := obs.NewRegistry()
	srv, err := api.New(bdb, cfg.API, reg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx, reg, ready)
}
