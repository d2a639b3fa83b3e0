package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/supervise"
	"github.com/paystream/paystream/streams"
)

// Role is which of paystream's services a Service is. It names the
// service's logs and NATS client and orders the stop: the services that
// take work in stop before the ones that do it.
type Role int

// The roles, in stop order.
const (
	RoleAPI       Role = iota // the purchase API: no new checkouts
	RoleEdge                  // the webhook receiver: no new events
	RoleProcessor             // a processor instance: applies, acks and relays what came in
)

func (r Role) String() string {
	switch r {
	case RoleAPI:
		return "api"
	case RoleEdge:
		return "edge"
	case RoleProcessor:
		return "processor"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Service is one service as App runs it: what App starts for it, and its
// Part, which builds what only the service has. Edge returns the edge's;
// apiservice.New and processorservice.New return the others'.
type Service struct {
	Role Role
	// Instance numbers the services of one role that run in one process
	// (processor instances: 1, 2, …); 0 when one does.
	Instance int
	// AdminAddr is where App serves /metrics, /healthz, /readyz and
	// /debug/pprof/ (ADMIN_ADDR).
	AdminAddr string
	// NATSURL is the broker; "" for a service that uses none (the purchase
	// API).
	NATSURL string
	// Streams are the streams App ensures on the broker; the zero value is
	// streams.DefaultConfig().
	Streams streams.Config
	// AwaitStreams makes Build wait until the streams exist (a consumer
	// needs its stream). Otherwise they are ensured in the background and
	// the service answers meanwhile (the edge: 503, /readyz says why).
	AwaitStreams bool
	Part         Part
}

// name names the service's unit and NATS client: its role, with its
// instance number when it has one.
func (s Service) name() string {
	if s.Instance > 0 {
		return fmt.Sprintf("%s-%d", s.Role, s.Instance)
	}
	return s.Role.String()
}

// Part is what a service adds to the lifecycle App runs (runService).
type Part interface {
	// Open opens what the service keeps besides the broker (a database
	// pool) and checks that it can serve from it (the schema is current).
	// It runs first, so a service that cannot run fails before it
	// connects; env has no broker yet. close, if not nil, runs last.
	Open(ctx context.Context, env Env) (close func() error, err error)
	// Build builds the service's parts on what Open opened and on env.
	Build(ctx context.Context, env Env) (Parts, error)
}

// Env is what App gives a service's Part.
type Env struct {
	Log *slog.Logger
	// Registry is the service's own; App serves it on the admin listener.
	Registry *prometheus.Registry
	// Conn and JS are the service's NATS connection (nil without a broker,
	// and in Open).
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Parts are what a service's Part built, for App to run.
type Parts struct {
	// Public is the service's public listener, if it has one.
	Public *Public
	// Units run beside the public listener until the service stops; they
	// stop after it, one after the other in this order (a consumer before
	// the companions that flush what it wrote).
	Units []supervise.Unit
	// Checks are the readiness checks of what only the service has (its
	// database, its consumer). App adds its own: shutdown, and nats and
	// stream for a service on the broker.
	Checks []obs.Check
	// Attrs are logged on the service's "listening" line.
	Attrs []any
}

// Public is a service's public listener, which App binds and serves.
type Public struct {
	Addr string // where to listen
	Var  string // the variable that sets Addr (EDGE_ADDR, API_ADDR), for errors
	// Server serves the listener.
	Server Server
	// ShutdownTimeout bounds the wait for the requests in flight once the
	// service stops; 0 waits as long as they take.
	ShutdownTimeout time.Duration
}

// Server serves a listener until Shutdown: a net/http server (the purchase
// API) or the edge's fasthttp one.
type Server interface {
	Serve(ln net.Listener) error
	// Shutdown stops accepting and waits for the requests in flight until
	// ctx ends.
	Shutdown(ctx context.Context) error
}
