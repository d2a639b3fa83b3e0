package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/streams"
)

// Broker timings.
const (
	// ensureAttempt bounds one attempt to create or update the streams.
	ensureAttempt = 5 * time.Second
	// ensureFirstRetry is the first wait after a failed attempt; it
	// doubles up to ensureAttempt.
	ensureFirstRetry = 250 * time.Millisecond
	// drainTimeout bounds the final drain of a service's connection. The
	// processor's default shutdown budget (25 s) leaves 5 s of Kubernetes'
	// 30 for it and the database.
	drainTimeout = 5 * time.Second
)

// broker is a service's NATS connection, with the streams being ensured on
// it.
type broker struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	closed   chan struct{} // closed with the connection
	stopWait context.CancelFunc
	ensuring sync.WaitGroup
}

// connectBroker connects to s's broker (in the background while it is down:
// streams.Connect retries forever) and ensures its streams, before it
// returns when s awaits them, in the background otherwise.
func connectBroker(ctx context.Context, s Service, name string, log *slog.Logger) (*broker, error) {
	b := &broker{closed: make(chan struct{})}
	nc, err := streams.Connect(s.NATSURL, name, log, nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }))
	if err != nil {
		return nil, err
	}
	b.nc = nc
	if b.js, err = streams.NewJetStream(nc); err != nil {
		nc.Close()
		return nil, err
	}
	sc := s.Streams
	if sc == (streams.Config{}) { // a hand-built config: never "update" the streams to zero limits
		sc = streams.DefaultConfig()
	}
	if s.AwaitStreams {
		if err := ensureStreams(ctx, b.js, sc, log); err != nil {
			nc.Close()
			return nil, err
		}
		return b, nil
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stopWait = cancel
	b.ensuring.Go(func() { _ = ensureStreams(bg, b.js, sc, log) })
	return b, nil
}

// checks are the readiness checks of a service on the broker: connected,
// and the events stream there.
func (b *broker) checks() []obs.Check {
	return []obs.Check{
		{Name: "nats", Check: func(context.Context) error {
			if st := b.nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("nats connection is %s", st)
			}
			return nil
		}},
		{Name: "stream", Check: func(ctx context.Context) error { return streams.Check(ctx, b.js, streams.EventsStream) }},
	}
}

// stop gives up ensuring the streams, then drains the connection (flushing
// the acks and publishes still buffered) and waits until it is closed, at
// most drainTimeout; then it closes it.
func (b *broker) stop() error {
	if b.stopWait != nil {
		b.stopWait()
	}
	b.ensuring.Wait()
	defer b.nc.Close() // a no-op once drained
	if err := b.nc.Drain(); err != nil {
		if b.nc.IsClosed() {
			return nil
		}
		return fmt.Errorf("drain nats connection: %w", err)
	}
	select {
	case <-b.closed:
		return nil
	case <-time.After(drainTimeout):
		return errors.New("drain nats connection: timed out")
	}
}

// ensureStreams creates or updates the streams, retrying with a growing
// wait while the broker cannot be reached, until it succeeds or ctx ends.
func ensureStreams(ctx context.Context, js jetstream.JetStream, c streams.Config, log *slog.Logger) error {
	wait := ensureFirstRetry
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		err := streams.Ensure(actx, js, c)
		cancel()
		if err == nil {
			log.Info("streams ensured")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for NATS: %w", err)
		}
		log.Warn("cannot ensure streams yet; retrying", "error", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for NATS: %w", err)
		case <-time.After(wait):
		}
		wait = min(wait*2, ensureAttempt)
	}
}
