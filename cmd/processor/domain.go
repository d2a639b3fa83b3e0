package main

import (
	"fmt"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
)

// wireDomain is the one place the processor binary meets the domain: the
// purchase handler applies events, the outbox relay publishes what they wrote
// to PURCHASES. The relay is a companion, stopped after the consumer drained.
func wireDomain(d processor.DomainDeps) (handling.Handler, []processor.Companion, error) {
	h, err := purchase.NewHandler(d.DB, purchase.Config{}, purchase.NewMetrics(d.Reg), d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("purchase handler: %w", err)
	}
	relay, err := outbox.NewRelay(d.DB, d.JS, outbox.RelayConfig{}, outbox.NewMetrics(d.Reg), d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox relay: %w", err)
	}
	return h, []processor.Companion{{Name: "outbox-relay", Run: relay.Run}}, nil
}
