package main

import (
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/pipeline"
)

// parseDomain reads the domain side's share of the environment (PURCHASE_*,
// OUTBOX_*, RECONCILE_*) with the rest, before anything connects.
func parseDomain(getenv config.Getenv) (pipeline.Config, error) {
	p := config.NewParser(getenv)
	c := pipeline.Parse(p)
	return c, p.Err()
}
