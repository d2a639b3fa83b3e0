// Package apiconfig maps the purchase API's environment onto its settings:
// the shared ones (internal/config), the pool size and the api package's own
// Config, whose defaults and rules are the api package's. It is apart from
// internal/config so the edge binary does not link the API's Postgres and
// Stripe clients.
package apiconfig

import (
	"strconv"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripeclient"
)

// Config holds the settings of the purchase API service (cmd/api): the
// shared ones, its pool size and the api package's own Config, embedded as
// every service's is.
type Config struct {
	config.Common
	DBMaxConns int // DB_MAX_CONNS
	// GCPercent (GOGC) is the garbage-collector target apiservice sets
	// for the process when it starts: api.DefaultGCPercent when the
	// environment has no GOGC, else GOGC's value, which Go's runtime has
	// already taken (-1: off); 0 leaves the runtime's.
	GCPercent  int
	api.Config // API_*, ADMIN_ADDR, CHECKOUT_*, BILLING_PORTAL_RETURN_URL, PAYEE_ONBOARDING_*, STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES
}

// GCPercent is Config.GCPercent of the environment p reads: GOGC as Go's
// runtime reads it ("off" is -1), api.DefaultGCPercent when it is unset.
func GCPercent(p *config.Parser) int {
	if v, set := p.Lookup("GOGC"); set && strings.EqualFold(v, "off") {
		return -1
	}
	return p.Int("GOGC", api.DefaultGCPercent, 1, 1_000_000)
}

// Parse reads and validates the purchase API's environment. The error names
// every bad variable and never prints a key.
func Parse(getenv config.Getenv) (Config, error) {
	p := config.NewParser(getenv)
	c := Config{
		Common:     config.ParseCommon(p),
		DBMaxConns: config.ParseDBMaxConns(p),
		GCPercent:  GCPercent(p),
		Config: api.Config{
			Addr:                    p.Addr("API_ADDR", api.DefaultAddr),
			AdminAddr:               p.Addr("ADMIN_ADDR", api.DefaultAdminAddr),
			StripeAPIBase:           p.URL("STRIPE_API_BASE", stripeclient.DefaultAPIBase, "https", "http"),
			StripeMaxNetworkRetries: p.Int("STRIPE_MAX_NETWORK_RETRIES", stripeclient.DefaultMaxNetworkRetries, 0, stripeclient.MaxNetworkRetries),
			StripeTimeout:           p.Duration("API_STRIPE_TIMEOUT", api.DefaultStripeTimeout, time.Second, 5*time.Minute),
			SuccessURL:              p.URL("CHECKOUT_SUCCESS_URL", api.DefaultSuccessURL, "https", "http"),
			CancelURL:               p.URL("CHECKOUT_CANCEL_URL", api.DefaultCancelURL, "https", "http"),
			SessionTTL:              p.Duration("CHECKOUT_SESSION_TTL", api.DefaultSessionTTL, api.MinSessionTTL, api.MaxSessionTTL),
			PortalReturnURL:         p.URL("BILLING_PORTAL_RETURN_URL", api.DefaultPortalReturnURL, "https", "http"),
			RateLimit:               p.Int("API_RATE_LIMIT", api.DefaultRateLimit, 0, 10_000_000),
			ShutdownTimeout:         p.Duration("API_SHUTDOWN_TIMEOUT", api.DefaultShutdownTimeout, time.Second, time.Hour),
			AccessWorkers:           p.Int("API_ACCESS_WORKERS", api.DefaultAccessWorkers, 1, api.MaxAccessWorkers),
			AccessBatch:             p.Int("API_ACCESS_BATCH", api.DefaultAccessBatch, 1, api.MaxAccessBatch),
			Onboarding: payout.OnboardingConfig{
				RefreshURL: p.URL("PAYEE_ONBOARDING_REFRESH_URL", api.DefaultOnboardingRefreshURL, "https", "http"),
				ReturnURL:  p.URL("PAYEE_ONBOARDING_RETURN_URL", api.DefaultOnboardingReturnURL, "https", "http"),
				Country:    p.String("PAYEE_ONBOARDING_COUNTRY", ""),
			},
		},
	}
	if hosts, ok := p.Lookup("CHECKOUT_ALLOWED_HOSTS"); ok {
		for _, h := range strings.Split(hosts, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				p.Fail("CHECKOUT_ALLOWED_HOSTS", hosts, "must be a comma-separated list of host names (.example.com allows every subdomain)")
				break
			}
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	if keys, set := p.Lookup("API_KEYS"); !set {
		p.Fail("API_KEYS", "", "is required: comma-separated bearer keys of at least 16 characters (several during a rotation)")
	} else {
		for i, k := range strings.Split(keys, ",") {
			k = strings.TrimSpace(k)
			if len(k) < api.MinKeyLength || strings.ContainsAny(k, " \t\r\n") {
				p.FailSecret("API_KEYS", "key #"+strconv.Itoa(i+1)+" must be at least 16 characters without spaces")
				continue
			}
			c.Keys = append(c.Keys, k)
		}
	}
	if key, set := p.StripeSecretKey("STRIPE_SECRET_KEY"); !set {
		p.Fail("STRIPE_SECRET_KEY", "", "is required to create Checkout Sessions (sk_… or a restricted rk_… key with write access to Checkout Sessions, Subscriptions and Billing Portal sessions)")
	} else {
		c.StripeSecretKey = key
	}
	if p.Err() == nil {
		// The relations between settings (listeners, URLs) are the api
		// package's to judge; check them now, before anything connects.
		p.Check(c.Config.Validate())
	}
	return c, p.Err()
}
