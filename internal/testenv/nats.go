// Package testenv starts the real dependencies tests need: an embedded
// nats-server with JetStream on a random port, and a fresh Postgres database
// per test on a server it finds or starts (ServerURL). Nothing here is a
// mock.
package testenv

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// NATS is an embedded JetStream server that a test can stop and restart on the
// same port and store, to exercise broker outages.
type NATS struct {
	tb   testing.TB
	opts server.Options
	srv  *server.Server
}

// StartNATS starts an embedded nats-server with JetStream on 127.0.0.1 and a
// random port, its store in tb.TempDir(). It is shut down at cleanup.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	n := &NATS{tb: tb, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	n.start()
	// Restarts reuse the port the first start picked, so clients reconnect.
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(n.Shutdown)
	return n
}

func (n *NATS) start() {
	n.tb.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.tb.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.tb.Fatal("nats-server not ready after 10s")
	}
	n.srv = srv
}

// URL is the client URL, nats://127.0.0.1:<port>.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Server exposes the running server (for monitoring calls in tests).
func (n *NATS) Server() *server.Server { return n.srv }

// Shutdown stops the server; it is safe to call twice.
func (n *NATS) Shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port and store.
func (n *NATS) Restart() {
	n.tb.Helper()
	n.Shutdown()
	n.start()
}

// Start starts a server stopped with Shutdown again on the same port and store.
func (n *NATS) Start() {
	n.tb.Helper()
	n.start()
}

// Connect returns a client connection closed at cleanup.
func (n *NATS) Connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect to embedded nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection with the three
// paystream streams ensured (file storage in the temp store, replicas 1).
func (n *NATS) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	js, err := streams.NewJetStream(n.Connect(tb))
	if err != nil {
		tb.Fatal(err)
	}
	if err := streams.Ensure(tb.Context(), js, streams.DefaultConfig()); err != nil {
		tb.Fatal(err)
	}
	return js
}
