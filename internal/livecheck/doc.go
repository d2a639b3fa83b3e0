// Package livecheck proves the dashboard and the alert rules against what the
// running services really export: its test starts the whole stack (edge and
// processor on random ports, embedded JetStream, a fresh Postgres database)
// and a real Prometheus server scraping their admin listeners, drives
// webhooks through it, then evaluates every Grafana panel query and every
// alert expression through Prometheus's HTTP API.
//
// The package has no code of its own: everything is in its _test.go files.
// The test needs the prometheus binary (Debian package prometheus, which
// .ci/run installs); without it the test skips, except under CI=true where it
// fails.
package livecheck
