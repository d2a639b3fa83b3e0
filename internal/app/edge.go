package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/streams"
)

// edgeDrainTimeout bounds the edge's final NATS drain (flushing pending
// publishes).
const edgeDrainTimeout = 10 * time.Second

// runEdge is the edge service: connect to NATS (in the background if the
// broker is down), serve until ctx ends, then drain NATS. ready gets the
// bound addresses.
func runEdge(ctx context.Context, cfg config.Edge, name string, log *slog.Logger, ready func(edge.Addrs)) error {
	closed := make(chan struct{})
	nc, err := streams.Connect(cfg.NATSURL, name, log, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		return err
	}
	runErr := edge.Run(ctx, cfg.Config, nc, obs.NewRegistry(), log, ready)

	// Every handler has returned: flush what is left and close.
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn("nats drain", "error", err)
		nc.Close()
	}
	select {
	case <-closed:
	case <-time.After(edgeDrainTimeout):
		log.Warn("nats drain timed out; closing")
		nc.Close()
	}
	return runErr
}
