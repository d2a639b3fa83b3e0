package config

import (
	"github.com/paystream/paystream/streams"

	"log/slog"
	"strings"
)

// Defaults of the design contract (../shared/DESIGN.md).
const (
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/paystream?sslmode=disable"
)

// Common holds the settings every paystream process reads.
type Common struct {
	NATSURL     string         // NATS_URL
	DatabaseURL string         // DATABASE_URL
	LogLevel    slog.Level     // LOG_LEVEL: debug, info, warn, error
	Streams     streams.Config // STREAM_* settings
}

// ParseCommon reads the shared settings into c.
func ParseCommon(p *Parser) Common {
	c := Common{
		NATSURL:     p.URL("NATS_URL", DefaultNATSURL, "nats", "tls", "ws", "wss"),
		DatabaseURL: p.URL("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		Streams:     ParseStreams(p),
	}
	switch lv := strings.ToLower(p.String("LOG_LEVEL", "info")); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		p.Fail("LOG_LEVEL", lv, "must be debug, info, warn or error")
	}
	return c
}
