// Package pipeline holds the full-stack tests: embedded JetStream, a real
// Postgres, the edge, processor instances and the purchase API started
// through internal/app exactly as the binaries start them, and a PURCHASES
// consumer. Its harness, shared with the cluster suite (pipeline/cluster)
// and the live check, is pipeline/pipelinetest; the wiring it tests lives in
// internal/app.
package pipeline
