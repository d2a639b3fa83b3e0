package edge

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/envvar"
)

// Defaults of the design contract.
const (
	DefaultAddr            = ":8080"
	DefaultAdminAddr       = ":9090"
	DefaultWebhookTol      = 300 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRateLimit       = 1000
	DefaultPublishTimeout  = 5 * time.Second
	DefaultShutdownTimeout = 25 * time.Second
)

// Config holds the edge's settings; internal/config maps the environment
// onto it.
type Config struct {
	Addr      string // EDGE_ADDR: public webhook listener
	AdminAddr string // ADMIN_ADDR: /metrics, /healthz, /readyz

	// Endpoints maps an endpoint name (a subject token) to its signing
	// secrets. More than one secret means a rotation is under way: a request
	// verifies if any of them matches.
	Endpoints map[string][]string

	Tolerance       time.Duration  // STRIPE_WEBHOOK_TOLERANCE: max age (and max future skew) of a signature
	MaxBodyBytes    int64          // EDGE_MAX_BODY_BYTES
	RateLimit       int            // EDGE_RATE_LIMIT: requests per minute per client IP; 0 = off
	TrustedProxies  []netip.Prefix // EDGE_TRUSTED_PROXIES: X-Forwarded-For is honoured only from these
	PublishTimeout  time.Duration  // EDGE_PUBLISH_TIMEOUT: how long a request waits for its PubAck
	ShutdownTimeout time.Duration  // EDGE_SHUTDOWN_TIMEOUT: grace for in-flight requests on SIGTERM
}

// setDefaults fills the zero durations and sizes. Listeners are not
// defaulted: the caller binds what it was given. RateLimit 0 means off.
func (c *Config) setDefaults() {
	if c.Tolerance <= 0 {
		c.Tolerance = DefaultWebhookTol
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
}

// WithDefaults returns c with the zero fields that have a default filled,
// as New fills them.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

// Validate checks c as New would (defaults applied to a copy), so a caller
// can fail before it connects to anything.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validate()
}

// validate checks what the handler cannot run without.
func (c *Config) validate() error {
	if len(c.Endpoints) == 0 {
		return envvar.New("STRIPE_WEBHOOK_SECRET", "", "no webhook endpoint configured: set STRIPE_WEBHOOK_SECRET and/or STRIPE_WEBHOOK_SECRET_<NAME> to the endpoint's whsec_ signing secret")
	}
	return nil
}

// String describes c for a start-up log line. Secrets are never printed, only
// how many each endpoint has.
func (c Config) String() string {
	names := c.EndpointNames()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s(%d secrets)", n, len(c.Endpoints[n]))
	}
	return fmt.Sprintf("edge addr=%s admin=%s endpoints=[%s] tolerance=%s max_body=%d rate_limit=%d/min trusted_proxies=%v publish_timeout=%s",
		c.Addr, c.AdminAddr, strings.Join(parts, " "), c.Tolerance, c.MaxBodyBytes, c.RateLimit, c.TrustedProxies, c.PublishTimeout)
}

// EndpointNames returns the configured endpoint names, sorted.
func (c Config) EndpointNames() []string {
	names := make([]string, 0, len(c.Endpoints))
	for n := range c.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LogValue keeps secrets out of structured logs when a Config is logged whole.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
