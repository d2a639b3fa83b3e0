// Package pipeline holds the full-stack tests: embedded JetStream, a real
// Postgres, the edge, processor instances started through internal/app
// exactly as cmd/processor starts them, and a PURCHASES consumer. It has no
// code of its own; the wiring it tests lives in internal/app.
package pipeline
