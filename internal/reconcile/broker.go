package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/streams"
)

// ensureTimeout bounds a one-shot run's wait for the broker: the NATS client
// keeps retrying a refused connection in the background, so without a bound
// an unreachable broker would look like a hang.
const ensureTimeout = 15 * time.Second

// Broker is a one-shot run's connection to the broker (`paystream
// reconcile`); the processor's periodic mode uses the processor's own.
type Broker struct {
	Publisher Publisher // nil on a dry run
	Index     Index     // reads STRIPE_EVENTS; nil when a dry run found no broker
	close     func()
}

// Close closes the connection. Nothing is drained: every publish already
// waited for its PubAck.
func (b *Broker) Close() {
	if b.close != nil {
		b.close()
	}
}

// ConnectBroker connects a one-shot run to the broker at natsURL. A run
// waits for it (at most 15 s) and ensures the streams of cfg. A dry run
// publishes nothing but still reads STRIPE_EVENTS when the broker answers at
// once, to tell missed events from delivered ones; without it every listed
// event counts as a candidate, which a warning says.
func ConnectBroker(ctx context.Context, natsURL string, cfg streams.Config, dryRun bool, log *slog.Logger) (*Broker, error) {
	if dryRun {
		nc, err := streams.Connect(natsURL, "paystream-reconcile", log, nats.RetryOnFailedConnect(false))
		if err != nil {
			log.Warn("dry run without the broker: every listed event counts as a candidate", "error", err)
			return &Broker{}, nil
		}
		js, err := streams.NewJetStream(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &Broker{Index: StreamIndex{JS: js}, close: nc.Close}, nil
	}
	nc, err := streams.Connect(natsURL, "paystream-reconcile", log)
	if err != nil {
		return nil, err
	}
	js, err := streams.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, ensureTimeout)
	err = streams.Ensure(ectx, js, cfg)
	cancel()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reconcile: broker at NATS_URL=%s not ready: %w", natsURL, err)
	}
	return &Broker{Publisher: streams.NewPublisher(js), Index: StreamIndex{JS: js}, close: nc.Close}, nil
}
