package config

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/streams"
)

// ParseStreams reads the STREAM_* variables that shape the JetStream streams.
// The defaults and the reasons for them live on streams.DefaultConfig.
func ParseStreams(p *Parser) streams.Config {
	def := streams.DefaultConfig()
	c := streams.Config{
		Replicas:        p.Int("STREAM_REPLICAS", def.Replicas, 1, 5),
		DedupWindow:     p.Duration("STREAM_DEDUP_WINDOW", def.DedupWindow, time.Second, 7*24*time.Hour),
		EventsMaxAge:    p.Duration("STREAM_EVENTS_MAX_AGE", def.EventsMaxAge, time.Hour, 365*24*time.Hour),
		DLQMaxAge:       p.Duration("STREAM_DLQ_MAX_AGE", def.DLQMaxAge, time.Hour, 365*24*time.Hour),
		PurchasesMaxAge: p.Duration("STREAM_PURCHASES_MAX_AGE", def.PurchasesMaxAge, time.Hour, 365*24*time.Hour),
		Storage:         def.Storage,
	}
	switch s := strings.ToLower(p.String("STREAM_STORAGE", "file")); s {
	case "file":
		c.Storage = jetstream.FileStorage
	case "memory":
		c.Storage = jetstream.MemoryStorage
	default:
		p.Fail("STREAM_STORAGE", s, "must be file or memory")
	}
	if c.DedupWindow > c.EventsMaxAge {
		p.Fail("STREAM_DEDUP_WINDOW", c.DedupWindow.String(), "must not exceed STREAM_EVENTS_MAX_AGE")
	}
	return c
}
