// Package devenv provides the dependencies of the all-in-one dev mode: an
// embedded nats-server with JetStream, and a Postgres found or started for
// the developer.
package devenv

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure the embedded broker.
type NATSOptions struct {
	Host       string // default 127.0.0.1
	Port       int    // 0 picks a free port
	StoreDir   string // JetStream store; required
	SyncAlways bool   // fsync every write, as the production config does
}

// StartNATS runs an embedded nats-server with JetStream and file storage.
// Call Shutdown (then WaitForShutdown) on the result when done.
func StartNATS(o NATSOptions, log *slog.Logger) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("devenv: NATS store directory is empty")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "paystream-dev",
		Host:       o.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(o.StoreDir),
		NoSigs:     true,
		SyncAlways: o.SyncAlways,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("devenv: configure embedded nats-server: %w", err)
	}
	srv.SetLoggerV2(slogLogger{log.With("component", "nats-server")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("devenv: embedded nats-server on %s:%d not ready after 15s (port in use?)", o.Host, o.Port)
	}
	return srv, nil
}

// slogLogger adapts slog to nats-server's Logger interface. The server's
// notices (a dozen banner lines at start, one per connection change) are
// debug output for paystream: they show only with LOG_LEVEL=debug, so the
// embedded server logs at warn level otherwise.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l slogLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l slogLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
