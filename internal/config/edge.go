package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/streams"
)

// Secret variable names. STRIPE_WEBHOOK_SECRET is the endpoint
// streams.DefaultEndpoint (/webhooks/stripe); STRIPE_WEBHOOK_SECRET_<NAME> is
// the endpoint lower(NAME) (/webhooks/stripe/<name>).
const (
	SecretVar       = "STRIPE_WEBHOOK_SECRET"
	secretVarPrefix = SecretVar + "_"
	secretPrefix    = "whsec_"
)

// Edge holds the settings of the edge service (cmd/edge): the shared ones
// and the edge package's own Config, embedded as every service's is.
type Edge struct {
	Common
	edge.Config // EDGE_*, ADMIN_ADDR, STRIPE_WEBHOOK_*
}

// ParseEdge reads the edge settings. Values come from getenv; environ lists
// the variables that exist (os.Environ() form KEY=VALUE, or bare names) and
// is only used to discover the STRIPE_WEBHOOK_SECRET_<NAME> variables, which
// cannot be looked up by a name known in advance.
func ParseEdge(getenv Getenv, environ []string) (Edge, error) {
	p := NewParser(getenv)
	e := Edge{
		Common: ParseCommon(p),
		Config: edge.Config{
			Addr:            p.Addr("EDGE_ADDR", edge.DefaultAddr),
			AdminAddr:       p.Addr("ADMIN_ADDR", edge.DefaultAdminAddr),
			Tolerance:       p.Duration("STRIPE_WEBHOOK_TOLERANCE", edge.DefaultWebhookTol, time.Second, 24*time.Hour),
			MaxBodyBytes:    int64(p.Int("EDGE_MAX_BODY_BYTES", edge.DefaultMaxBodyBytes, 1024, 64<<20)),
			RateLimit:       p.Int("EDGE_RATE_LIMIT", edge.DefaultRateLimit, 0, 10_000_000),
			TrustedProxies:  parsePrefixes(p, "EDGE_TRUSTED_PROXIES"),
			PublishTimeout:  p.Duration("EDGE_PUBLISH_TIMEOUT", edge.DefaultPublishTimeout, 10*time.Millisecond, time.Minute),
			ShutdownTimeout: p.Duration("EDGE_SHUTDOWN_TIMEOUT", edge.DefaultShutdownTimeout, time.Second, 10*time.Minute),
			Endpoints:       map[string][]string{},
		},
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
	if p.Err() == nil {
		// A bad secret variable leaves its endpoint out: no need to add
		// that none is configured.
		p.Check(e.Config.Validate())
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
			p.FailSecret(name, fmt.Sprintf("secret #%d is empty (use a comma only between secrets)", i+1))
			return nil, false
		case !strings.HasPrefix(s, secretPrefix) || len(s) <= len(secretPrefix):
			p.FailSecret(name, fmt.Sprintf("secret #%d does not start with %s (copy the endpoint's signing secret from the Stripe dashboard)", i+1, secretPrefix))
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
