// Package deploycheck holds the tests that keep the deployment files honest
// without a Docker engine: compose.yaml (alone and with compose.cluster.yaml)
// loaded with the compose-spec loader, the NATS server configs parsed by
// nats-server itself, the Prometheus alert rules and the Grafana dashboard
// checked against the metric names the code exports, and every runbook link
// checked against docs/runbook.md.
//
// The package has no code of its own: everything is in its _test.go files,
// and `go test ./internal/deploycheck/` is the whole check. promtool covers
// the rest (`promtool check config`, `promtool test rules`, see .ci/run).
package deploycheck
