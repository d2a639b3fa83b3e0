package app

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/edge"
)

// Edge returns the edge service of cfg: the webhook receiver on its public
// listener. It starts without the broker (webhooks get 503 until the
// streams exist) and stops after its requests in flight got their PubAck.
func Edge(cfg config.Edge) Service {
	return Service{Role: RoleEdge, AdminAddr: cfg.AdminAddr, NATSURL: cfg.NATSURL, Streams: cfg.Streams,
		Part: &edgePart{cfg: cfg.Config.WithDefaults()}}
}

// edgePart builds the edge: its handler behind its public server.
type edgePart struct {
	cfg edge.Config
	// publisher, if set, wraps the JetStream context the handler publishes
	// on (tests hold PubAcks back to catch requests in flight).
	publisher func(jetstream.JetStream) jetstream.JetStream
}

// Open opens nothing: the edge keeps nothing besides the broker.
func (p *edgePart) Open(context.Context, Env) (func() error, error) { return nil, nil }

func (p *edgePart) Build(_ context.Context, env Env) (Parts, error) {
	js := env.JS
	if p.publisher != nil {
		js = p.publisher(js)
	}
	h, err := edge.New(p.cfg, js, edge.NewMetrics(env.Registry), env.Log)
	if err != nil {
		return Parts{}, err
	}
	return Parts{
		Public: &Public{Addr: p.cfg.Addr, Var: "EDGE_ADDR", Server: edge.NewServer(h, env.Log), ShutdownTimeout: p.cfg.ShutdownTimeout},
		Attrs:  []any{"endpoints", p.cfg.EndpointNames()},
	}, nil
}
