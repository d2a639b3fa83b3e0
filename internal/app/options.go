package app

import "time"

// Option adjusts how App runs the services; tests and tools use them
// instead of wiring their own.
type Option func(*App)

// WithReady calls f once, with the bound addresses, when every service
// listens (and consumes).
func WithReady(f func(Addrs)) Option { return func(a *App) { a.ready = f } }

// WithGrace bounds how long each service may take to stop once told to;
// a service still running after that is reported and left behind so the
// program can exit. Without it, Run waits for every service.
func WithGrace(d time.Duration) Option { return func(a *App) { a.grace = d } }

// WithClientName sets the prefix of the NATS client names (default
// "paystream"): the edge connects as <prefix>-edge, processors as
// <prefix>-processor[-N].
func WithClientName(prefix string) Option { return func(a *App) { a.clientName = prefix } }
