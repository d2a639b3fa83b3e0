package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/paystream/paystream/streams"
)

// Edge defaults of the design contract.
const (
	DefaultEdgeAddr        = ":8080"
	DefaultEdgeAdminAddr   = ":9090"
	DefaultWebhookTol      = 300 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRateLimit       = 1000
	DefaultPublishTimeout  = 5 * time.Second
	DefaultShutdownTimeout = 25 * time.Second
)

// Secret variable names. STRIPE_WEBHOOK_SECRET is the endpoint
// streams.DefaultEndpoint (/webhooks/stripe); STRIPE_WEBHOOK_SECRET_<NAME> is
// the endpoint lower(NAME) (/webhooks/stripe/<name>).
const (
	SecretVar       = "STRIPE_WEBHOOK_SECRET"
	secretVarPrefix = SecretVar + "_"
	secretPrefix    = "whsec_"
)

// Edge holds the settings of cmd/edge.
type Edge struct {
	Common

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

// String describes e for a start-up log line. Secrets are never printed, only
// how many each endpoint has.
func (e Edge) String() string {
	names := e.EndpointNames()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s(%d secrets)", n, len(e.Endpoints[n]))
	}
	return fmt.Sprintf("edge addr=%s admin=%s endpoints=[%s] tolerance=%s max_body=%d rate_limit=%d/min trusted_proxies=%v publish_timeout=%s",
		e.Addr, e.AdminAddr, strings.Join(parts, " "), e.Tolerance, e.MaxBodyBytes, e.RateLimit, e.TrustedProxies, e.PublishTimeout)
}

// EndpointNames returns the configured endpoint names, sorted.
func (e Edge) EndpointNames() []string {
	names := make([]string, 0, len(e.Endpoints))
	for n := range e.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LogValue keeps secrets out of structured logs when an Edge is logged whole.
func (e Edge) LogValue() slog.Value { return slog.StringValue(e.String()) }

// ParseEdge reads the edge settings. Values come from getenv; environ lists
// the variables that exist (os.Environ() form KEY=VALUE, or bare names) and
// is only used to discover the STRIPE_WEBHOOK_SECRET_<NAME> variables, which
// cannot be looked up by a name known in advance.
func ParseEdge(getenv Getenv, environ []string) (Edge, error) {
	p := NewParser(getenv)
	e := Edge{
		Common:          ParseCommon(p),
		Addr:            p.Addr("EDGE_ADDR", DefaultEdgeAddr),
		AdminAddr:       p.Addr("ADMIN_ADDR", DefaultEdgeAdminAddr),
		Tolerance:       p.Duration("STRIPE_WEBHOOK_TOLERANCE", DefaultWebhookTol, time.Second, 24*time.Hour),
		MaxBodyBytes:    int64(p.Int("EDGE_MAX_BODY_BYTES", DefaultMaxBodyBytes, 1024, 64<<20)),
		RateLimit:       p.Int("EDGE_RATE_LIMIT", DefaultRateLimit, 0, 10_000_000),
		TrustedProxies:  parsePrefixes(p, "EDGE_TRUSTED_PROXIES"),
		PublishTimeout:  p.Duration("EDGE_PUBLISH_TIMEOUT", DefaultPublishTimeout, 10*time.Millisecond, time.Minute),
		ShutdownTimeout: p.Duration("EDGE_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, time.Second, 10*time.Minute),
		Endpoints:       map[string][]string{},
	}
	if e.Addr == e.AdminAddr && !strings.HasSuffix(e.Addr, ":0") { // :0 picks two different ports
		p.Fail("ADMIN_ADDR", e.AdminAddr, "must differ from EDGE_ADDR: admin endpoints never share the public listener")
	}
	for _, name := range secretVarNames(environ) {
		endpoint := streams.DefaultEndpoint
		if name != SecretVar {
			suffix := strings.TrimPrefix(name, secretVarPrefix)
			endpoint = strings.ToLower(suffix)
			if endpoint == streams.DefaultEndpoint {
				p.Fail(name, "", "the name "+streams.DefaultEndpoint+" is reserved for "+SecretVar)
				continue
			}
			if !streams.ValidEndpoint(endpoint) {
				p.Fail(name, "", "the part after "+secretVarPrefix+" must be 1-63 letters, digits, _ or - (it becomes the endpoint /webhooks/stripe/<name>)")
				continue
			}
		}
		v, ok := p.Lookup(name)
		if !ok {
			continue // set but empty: treated as unset
		}
		if secrets, ok := parseSecrets(p, name, v); ok {
			e.Endpoints[endpoint] = secrets
		}
	}
	if len(e.Endpoints) == 0 && p.Err() == nil {
		p.Fail(SecretVar, "", "no webhook endpoint configured: set "+SecretVar+" and/or "+secretVarPrefix+"<NAME> to the endpoint's whsec_ signing secret")
	}
	if err := p.Err(); err != nil {
		return Edge{}, err
	}
	return e, nil
}

// secretVarNames returns the distinct STRIPE_WEBHOOK_SECRET[_<NAME>] names in
// environ, sorted so errors come out in a stable order.
func secretVarNames(environ []string) []string {
	seen := map[string]bool{}
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name != SecretVar && !strings.HasPrefix(name, secretVarPrefix) || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// parseSecrets splits a comma-separated secret list. Errors never contain the
// value: it is a credential.
func parseSecrets(p *Parser, name, v string) ([]string, bool) {
	var out []string
	seen := map[string]bool{}
	for i, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			p.errs = append(p.errs, &VarError{Name: name, Secret: true,
				Reason: fmt.Sprintf("secret #%d is empty (use a comma only between secrets)", i+1)})
			return nil, false
		case !strings.HasPrefix(s, secretPrefix) || len(s) <= len(secretPrefix):
			p.errs = append(p.errs, &VarError{Name: name, Secret: true,
				Reason: fmt.Sprintf("secret #%d does not start with %s (copy the endpoint's signing secret from the Stripe dashboard)", i+1, secretPrefix)})
			return nil, false
		case seen[s]:
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, true
}

// parsePrefixes reads a comma-separated list of CIDRs or single addresses.
func parsePrefixes(p *Parser, name string) []netip.Prefix {
	v, ok := p.Lookup(name)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(part); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p.Fail(name, part, "must be a comma-separated list of CIDRs such as 10.0.0.0/8,192.168.1.7")
		return nil
	}
	return out
}
