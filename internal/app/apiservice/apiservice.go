// Package apiservice is the purchase API's part of internal/app: its pool
// on a current schema, its handler on the public listener, its readiness.
// App runs it through the lifecycle every service shares. It is apart from
// internal/app so the edge binary does not link Postgres and Stripe.
package apiservice

import (
	"context"
	"errors"
	"runtime/debug"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/migrations"
)

// New returns the purchase API service of cfg.
func New(cfg apiconfig.Config) app.Service {
	cfg.Config = cfg.Config.WithDefaults()
	return app.Service{Role: app.RoleAPI, AdminAddr: cfg.AdminAddr, Part: &part{cfg: cfg}}
}

// part builds the purchase API.
type part struct {
	cfg apiconfig.Config
	db  *bun.DB
	srv *api.Server
}

// Open opens the API's own pool and refuses an outdated schema.
func (p *part) Open(ctx context.Context, _ app.Env) (func() error, error) {
	bdb, err := migrations.OpenCurrent(ctx, p.cfg.DatabaseURL, db.Options{MaxOpenConns: p.cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	p.db = bdb
	return func() error {
		var err error
		if p.srv != nil {
			err = p.srv.Close()
		}
		return errors.Join(err, bdb.Close())
	}, nil
}

func (p *part) Build(_ context.Context, env app.Env) (app.Parts, error) {
	srv, err := api.New(p.db, p.cfg.Config, env.Registry, env.Log)
	if err != nil {
		return app.Parts{}, err
	}
	if p.cfg.GCPercent != 0 {
		// Process-wide: in paystream dev the other services share it.
		prev := debug.SetGCPercent(p.cfg.GCPercent)
		env.Log.Debug("garbage collector target set", "gogc", p.cfg.GCPercent, "was", prev)
	}
	p.srv = srv
	hs := obs.HTTPServer(srv.Handler(), env.Log)
	hs.WriteTimeout = srv.WriteTimeout()
	return app.Parts{
		Public: &app.Public{Addr: p.cfg.Addr, Var: "API_ADDR", Server: hs, ShutdownTimeout: p.cfg.ShutdownTimeout},
		Checks: []obs.Check{{Name: "database", Check: p.db.PingContext}},
		Attrs:  []any{"keys", len(p.cfg.Keys)},
	}, nil
}
