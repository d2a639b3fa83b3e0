package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/stripeclient"
)

// API holds the purchase API's settings: the shared ones, its pool size and
// the api package's own Config mapped from the environment.
type API struct {
	Common
	DBMaxConns int        // DB_MAX_CONNS
	API        api.Config // API_*, CHECKOUT_*, STRIPE_SECRET_KEY, STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES
}

// ParseAPI reads and validates the purchase API's environment. The error
// names every bad variable and never prints a key.
func ParseAPI(getenv Getenv) (API, error) {
	p := NewParser(getenv)
	c := API{
		Common:     ParseCommon(p),
		DBMaxConns: p.Int("DB_MAX_CONNS", 10, 1, 1000),
		API: api.Config{
			Addr:                    p.Addr("API_ADDR", api.DefaultAddr),
			AdminAddr:               p.Addr("ADMIN_ADDR", api.DefaultAdminAddr),
			StripeAPIBase:           p.URL("STRIPE_API_BASE", stripeclient.DefaultAPIBase, "https", "http"),
			StripeMaxNetworkRetries: p.Int("STRIPE_MAX_NETWORK_RETRIES", stripeclient.DefaultMaxNetworkRetries, 0, stripeclient.MaxNetworkRetries),
			StripeTimeout:           p.Duration("API_STRIPE_TIMEOUT", api.DefaultStripeTimeout, time.Second, 5*time.Minute),
			SuccessURL:              p.URL("CHECKOUT_SUCCESS_URL", api.DefaultSuccessURL, "https", "http"),
			CancelURL:               p.URL("CHECKOUT_CANCEL_URL", api.DefaultCancelURL, "https", "http"),
			SessionTTL:              p.Duration("CHECKOUT_SESSION_TTL", api.DefaultSessionTTL, api.MinSessionTTL, api.MaxSessionTTL),
			RateLimit:               p.Int("API_RATE_LIMIT", api.DefaultRateLimit, 0, 10_000_000),
			ShutdownTimeout:         p.Duration("API_SHUTDOWN_TIMEOUT", api.DefaultShutdownTimeout, time.Second, time.Hour),
		},
	}
	if hosts, ok := p.Lookup("CHECKOUT_ALLOWED_HOSTS"); ok {
		for _, h := range strings.Split(hosts, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				p.Fail("CHECKOUT_ALLOWED_HOSTS", hosts, "must be a comma-separated list of host names (.example.com allows every subdomain)")
				break
			}
			c.API.AllowedHosts = append(c.API.AllowedHosts, h)
		}
	}
	keys, set := p.Lookup("API_KEYS")
	if !set {
		p.Fail("API_KEYS", "", "is required: comma-separated bearer keys of at least 16 characters (several during a rotation)")
	}
	for i, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		if !set {
			break
		}
		if len(k) < api.MinKeyLength || strings.ContainsAny(k, " \t\r\n") {
			// Secret: never echo it, not even in part.
			p.errs = append(p.errs, &VarError{Name: "API_KEYS", Secret: true,
				Reason: "key #" + strconv.Itoa(i+1) + " must be at least 16 characters without spaces"})
			continue
		}
		c.API.Keys = append(c.API.Keys, k)
	}
	switch key, ok := p.Lookup("STRIPE_SECRET_KEY"); {
	case !ok:
		p.Fail("STRIPE_SECRET_KEY", "", "is required to create Checkout Sessions (sk_… or a restricted rk_… key with write access to Checkout Sessions)")
	case !validSecretKey(key):
		p.Fail("STRIPE_SECRET_KEY", "", "must be a Stripe secret key sk_test_…/sk_live_… or a restricted key rk_test_…/rk_live_…")
	default:
		c.API.StripeSecretKey = key
	}
	if p.Err() == nil {
		// The relations between settings (listeners, URLs) are the api
		// package's to judge; check them now, before anything connects.
		if err := c.API.Validate(); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	return c, p.Err()
}
