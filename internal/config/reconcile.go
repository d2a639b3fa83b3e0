package config

import (
	"strings"
	"time"

	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/streams"
)

// Reconcile holds the settings of missed-event recovery: the one-shot
// `paystream reconcile` command and the processor's periodic mode.
type Reconcile struct {
	SecretKey         string        // STRIPE_SECRET_KEY: sk_… or rk_… (a restricted key needs read access to Events)
	APIBase           string        // STRIPE_API_BASE: Stripe API base URL
	MaxNetworkRetries int           // STRIPE_MAX_NETWORK_RETRIES: stripe-go's own retries per request
	Interval          time.Duration // RECONCILE_INTERVAL: periodic mode in the processor; 0 = off
	Window            time.Duration // RECONCILE_WINDOW: how far back a periodic run lists events
	Endpoint          string        // RECONCILE_ENDPOINT: endpoint name recovered events are published under
}

// ParseReconcile reads the reconcile settings. STRIPE_SECRET_KEY is required
// when needKey is true (the reconcile command) or when the periodic mode is
// on; otherwise it may stay unset.
func ParseReconcile(p *Parser, needKey bool) Reconcile {
	c := Reconcile{
		APIBase:           p.URL("STRIPE_API_BASE", reconcile.DefaultStripeAPIBase, "https", "http"),
		MaxNetworkRetries: p.Int("STRIPE_MAX_NETWORK_RETRIES", reconcile.DefaultStripeMaxNetworkRetries, 0, 10),
		Interval:          p.Duration("RECONCILE_INTERVAL", 0, 0, 24*time.Hour),
		Window:            p.Duration("RECONCILE_WINDOW", reconcile.DefaultWindow, time.Minute, reconcile.MaxWindow),
		Endpoint:          p.String("RECONCILE_ENDPOINT", streams.DefaultEndpoint),
	}
	if c.Interval != 0 && c.Interval < time.Minute {
		p.Fail("RECONCILE_INTERVAL", c.Interval.String(), "must be 0 (off) or at least 1m: each run pages through the Stripe Events API")
	}
	if c.Interval > c.Window {
		p.Fail("RECONCILE_INTERVAL", c.Interval.String(),
			"must not exceed RECONCILE_WINDOW, or events created between two runs are never listed")
	}
	if !streams.ValidEndpoint(c.Endpoint) {
		p.Fail("RECONCILE_ENDPOINT", c.Endpoint, "must be an endpoint name: lower case letters, digits, _ or -")
	}
	key, set := p.Lookup("STRIPE_SECRET_KEY")
	switch {
	case !set && (needKey || c.Interval > 0):
		p.Fail("STRIPE_SECRET_KEY", "", "is required to list events from the Stripe API (sk_… or a restricted rk_… key with read access to Events)")
	case set && !validSecretKey(key):
		// The value is a secret: never echo it, not even in part.
		p.Fail("STRIPE_SECRET_KEY", "", "must be a Stripe secret key sk_test_…/sk_live_… or a restricted key rk_test_…/rk_live_… (a publishable pk_… or webhook whsec_… secret does not work)")
	default:
		c.SecretKey = key
	}
	return c
}

// validSecretKey checks the shape of a Stripe API key so a pasted publishable
// key or webhook secret fails at start-up rather than as a 401 later.
func validSecretKey(k string) bool {
	ok := false
	for _, prefix := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			ok = true
		}
	}
	return ok && !strings.ContainsAny(k, " \t\r\n,")
}
