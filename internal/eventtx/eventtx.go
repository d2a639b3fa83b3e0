// Package eventtx applies Stripe events to Postgres exactly once. Each
// event's effects, its stripe_events row (the idempotency key and the audit
// trail) and its outbox rows commit in one transaction, of the event alone
// or of a batch of events.
//
// The domain contributes routes: what one event type does inside that
// transaction. Each family of events (purchases; next, creator payouts and
// subscriptions) brings its routes, and optionally a set-based path for
// some of them, as a Family; New joins the families into one route table.
// The lifecycle around a route is written once, here: decode the payload
// (once, checking it is the event its headers describe), run the route,
// claim the event id in stripe_events with what the route recorded, post
// the ledger transactions the routes handed over (one ledger.PostMany per
// database transaction, last), classify a failure, commit, and only then
// count; per event, or per batch with a savepoint per event and the
// families' set-based statements first.
package eventtx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/streams"
)

// Config tunes a Handler.
type Config struct {
	// Now is the clock of stripe_events.processed_at; default time.Now.
	Now func() time.Time
	// Batch is how HandleBatch applies a batch; the zero value is
	// BatchSetBased.
	Batch BatchPath
	// BeforeCommit, when set, runs inside every batch transaction just
	// before its commit; tests use it to make the commit fail.
	BeforeCommit func(ctx context.Context, tx bun.Tx) error
	// Ledger counts the ledger transactions the events post; nil counts
	// nothing.
	Ledger *ledger.Metrics
}

// BatchPath is how HandleBatch applies a batch.
type BatchPath int

const (
	// BatchSetBased (the default) applies the events the families' set
	// paths select with their set-based statements, then every other event
	// in its own savepoint, all in one transaction.
	BatchSetBased BatchPath = iota
	// BatchPerEvent applies every event in its own savepoint of the
	// batch's transaction; the set paths are not used. Tests and
	// benchmarks compare it with BatchSetBased: both must end in the same
	// rows.
	BatchPerEvent
	// BatchSetBasedAlways is BatchSetBased even for a batch of one event
	// (which otherwise goes through Handle), so tests can run single events
	// through the set paths.
	BatchSetBasedAlways
)

// Family is one domain's share of the route table.
type Family struct {
	Name   string           // names the family in errors, e.g. "purchase"
	Routes map[string]Route // by Stripe event type
	// Set, when not nil, applies some of the family's events of a batch
	// with set-based statements instead of one route call each.
	Set SetPath
}

// Handler applies Stripe events through the routes of its families. It
// implements handling.BatchHandler.
type Handler struct {
	db     *bun.DB
	cfg    Config
	log    *slog.Logger
	routes map[string]Route
	sets   []SetPath
}

var _ handling.BatchHandler = (*Handler)(nil)

// New returns the Handler of families on bdb. An event type may be routed by
// one family only: two families that both want one type must agree on one
// route for it (which may dispatch on the payload). Events of a type no
// family routes are recorded in stripe_events as ignored.
func New(bdb *bun.DB, cfg Config, log *slog.Logger, families ...Family) (*Handler, error) {
	if bdb == nil || log == nil {
		return nil, errors.New("eventtx: db and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{db: bdb, cfg: cfg, log: log, routes: map[string]Route{}}
	owner := map[string]string{}
	for _, f := range families {
		for typ, rt := range f.Routes {
			if prev, ok := owner[typ]; ok {
				return nil, fmt.Errorf("eventtx: event type %s is routed by both %s and %s", typ, prev, f.Name)
			}
			if !streams.ValidEventType(typ) {
				return nil, fmt.Errorf("eventtx: %s routes %q, which is not a Stripe event type", f.Name, typ)
			}
			if rt.apply == nil {
				return nil, fmt.Errorf("eventtx: %s routes %s without a route (make one with On)", f.Name, typ)
			}
			owner[typ] = f.Name
			h.routes[typ] = rt
		}
		if f.Set != nil {
			h.sets = append(h.sets, f.Set)
		}
	}
	return h, nil
}

// Types lists, sorted, the event types the handler routes; every other type
// is recorded as ignored.
func (h *Handler) Types() []string { return TypesOf(h.routes) }

// TypesOf lists the event types of routes, sorted.
func TypesOf(routes map[string]Route) []string {
	out := make([]string, 0, len(routes))
	for t := range routes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
