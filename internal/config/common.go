package config

import (
	"log/slog"
	"strings"

	"github.com/paystream/paystream/streams"
)

// Defaults of NATS_URL and DATABASE_URL (the README's configuration table).
const (
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/paystream?sslmode=disable"
	// DefaultDBMaxConns is DB_MAX_CONNS's default: the pool of a service on
	// Postgres (the purchase API, each processor instance).
	DefaultDBMaxConns = 10
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

// ParseDBMaxConns reads DB_MAX_CONNS, the pool size of a service on Postgres.
func ParseDBMaxConns(p *Parser) int { return p.Int("DB_MAX_CONNS", DefaultDBMaxConns, 1, 1000) }

// StripeSecretKey reads the Stripe API key of name (STRIPE_SECRET_KEY) and
// whether it is set. A set key of the wrong shape is reported here, so a
// pasted publishable key or webhook secret fails at start-up rather than as
// a 401 later, and comes back empty; the value is never printed.
func (p *Parser) StripeSecretKey(name string) (key string, set bool) {
	key, set = p.Lookup(name)
	if set && !validSecretKey(key) {
		p.FailSecret(name, "must be a Stripe secret key sk_test_…/sk_live_… or a restricted key rk_test_…/rk_live_… (a publishable pk_… or webhook whsec_… secret does not work)")
		return "", true
	}
	return key, set
}

// validSecretKey checks the shape of a Stripe API key.
func validSecretKey(k string) bool {
	ok := false
	for _, prefix := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			ok = true
		}
	}
	return ok && !strings.ContainsAny(k, " \t\r\n,")
}
