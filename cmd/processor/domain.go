package main

import (
	"fmt"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
)

// domainConfig is the domain side's share of the environment
// (PURCHASE_*, OUTBOX_*), read with the rest before anything connects.
type domainConfig struct {
	purchase purchase.Config
	relay    outbox.RelayConfig
}

func parseDomain(getenv config.Getenv) (domainConfig, error) {
	p := config.NewParser(getenv)
	c := domainConfig{purchase: purchase.ParseConfig(p), relay: outbox.ParseRelayConfig(p)}
	return c, p.Err()
}

// wire is the one place the processor binary meets the domain: the purchase
// handler applies events, the outbox relay publishes what they wrote to
// PURCHASES. The relay is a companion, stopped after the consumer drained.
func (c domainConfig) wire(d processor.DomainDeps) (handling.Handler, []processor.Companion, error) {
	h, err := purchase.NewHandler(d.DB, c.purchase, purchase.NewMetrics(d.Reg), d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("purchase handler: %w", err)
	}
	relay, err := outbox.NewRelay(d.DB, d.JS, c.relay, outbox.NewMetrics(d.Reg), d.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox relay: %w", err)
	}
	return h, []processor.Companion{{Name: "outbox-relay", Run: relay.Run}}, nil
}
