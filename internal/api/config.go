// Package api is the purchase API: it creates Stripe Checkout Sessions for
// catalog content (the checkout half of a purchase), answers access checks
// and lists a customer's purchases. It serves JSON on its own listener,
// never on the edge's webhook port, with /metrics, /healthz and /readyz on a
// separate admin listener. docs/api.md and openapi.yaml describe the routes.
package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripeclient"
)

// Defaults of Config.
const (
	DefaultAddr       = ":8081"
	DefaultAdminAddr  = ":9092"
	DefaultSuccessURL = "http://localhost:3000/checkout/success?session_id={CHECKOUT_SESSION_ID}"
	DefaultCancelURL  = "http://localhost:3000/checkout/cancel"
	// DefaultPortalReturnURL is where Stripe's Billing Portal sends the
	// customer back to.
	DefaultPortalReturnURL = "http://localhost:3000/account"
	// DefaultOnboardingRefreshURL and DefaultOnboardingReturnURL are where
	// Stripe sends a payee from an Account Link: back to ask for a new link
	// (expired or used), and after the flow.
	DefaultOnboardingRefreshURL = "http://localhost:3000/payouts/onboarding/refresh"
	DefaultOnboardingReturnURL  = "http://localhost:3000/payouts/onboarding/return"
	// DefaultSessionTTL is how long a created Checkout Session stays open.
	// Stripe accepts 30 minutes to 24 hours.
	DefaultSessionTTL = time.Hour
	MinSessionTTL     = 30 * time.Minute
	MaxSessionTTL     = 24 * time.Hour
	// DefaultRateLimit is requests per minute per API key: the access check
	// is called on every page view of the platform, so the default is high.
	DefaultRateLimit       = 60000
	DefaultStripeTimeout   = stripeclient.DefaultTimeout
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultAccessWorkers is one statement of access checks at a time:
	// the checks that arrive while it runs share the next one. Measured on
	// two cores shared with Postgres (docs/benchmarks.md), a second worker
	// only split the same checks into smaller batches (2.7 checks per
	// statement instead of 5.5) and cost throughput and p99. Raise it where
	// Postgres has cores of its own and the round trip, not CPU, bounds a
	// statement.
	DefaultAccessWorkers = 1
	// DefaultAccessBatch bounds the checks one statement answers (and so
	// the arrays a statement sends).
	DefaultAccessBatch = 64
	MaxAccessWorkers   = 1000
	MaxAccessBatch     = 1000
	// DefaultGCPercent is the purchase API process's GOGC when the
	// environment sets none. Every access check allocates ~5 KiB (net/http's
	// request and headers, the row, the JSON) over a live heap of ~5 MiB, so
	// at Go's default of 100 the API collected 71 times a second at 24 000
	// checks/s (heap goal 4 MiB, RSS 37 MiB), and those collections were a
	// good part of the access check's p99: 1.79–2.21 ms at 100 against
	// 1.43–1.69 ms at 400 over the runs of docs/benchmarks.md (bench api, 16
	// concurrency). At 400: 10 collections a second, heap goal 16 MiB, RSS
	// 49 MiB.
	DefaultGCPercent = 400
	// MinKeyLength keeps guessable bearer keys out.
	MinKeyLength = 16
)

// Config holds the API's settings. internal/config/apiconfig maps the
// environment onto it; New fills in defaults and validates it.
type Config struct {
	Addr      string   // API_ADDR: the JSON API listener
	AdminAddr string   // ADMIN_ADDR: /metrics, /healthz, /readyz
	Keys      []string // API_KEYS: accepted bearer keys (several during a rotation)

	StripeSecretKey         string        // STRIPE_SECRET_KEY
	StripeAPIBase           string        // STRIPE_API_BASE
	StripeMaxNetworkRetries int           // STRIPE_MAX_NETWORK_RETRIES
	StripeTimeout           time.Duration // API_STRIPE_TIMEOUT: one HTTP attempt to Stripe

	SuccessURL   string        // CHECKOUT_SUCCESS_URL: default success_url
	CancelURL    string        // CHECKOUT_CANCEL_URL: default cancel_url
	AllowedHosts []string      // CHECKOUT_ALLOWED_HOSTS: hosts a caller's URLs may name; default the default URLs' hosts
	SessionTTL   time.Duration // CHECKOUT_SESSION_TTL: expires_at of a new session

	PortalReturnURL string // BILLING_PORTAL_RETURN_URL: default return_url of a Billing Portal session
	// Onboarding holds the default refresh and return URLs of a payee's
	// Account Link (PAYEE_ONBOARDING_REFRESH_URL, _RETURN_URL; a caller's,
	// on AllowedHosts, wins) and the country of new Express accounts
	// (PAYEE_ONBOARDING_COUNTRY).
	Onboarding payout.OnboardingConfig

	RateLimit       int           // API_RATE_LIMIT: requests per minute per key; 0 = off
	ShutdownTimeout time.Duration // API_SHUTDOWN_TIMEOUT: grace for in-flight requests

	// AccessWorkers (API_ACCESS_WORKERS) is how many access-check
	// statements run at once, each on a connection of the pool; AccessBatch
	// (API_ACCESS_BATCH) the most checks one statement answers (1: each its
	// own statement).
	AccessWorkers int
	AccessBatch   int

	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// StripeHTTPClient carries the Stripe calls; nil means one with
	// StripeTimeout. Tests use it to reach a fake.
	StripeHTTPClient *http.Client
}

// stripe is the Stripe client's share of c. Its timeout is
// API_STRIPE_TIMEOUT, which the API's write timeout is derived from.
func (c Config) stripe() stripeclient.Config {
	return stripeclient.Config{Key: c.StripeSecretKey, APIBase: c.StripeAPIBase, MaxNetworkRetries: c.StripeMaxNetworkRetries,
		Timeout: c.StripeTimeout, HTTPClient: c.StripeHTTPClient}
}

// setDefaults fills the zero fields.
func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Addr, DefaultAddr)
	def(&c.AdminAddr, DefaultAdminAddr)
	def(&c.StripeAPIBase, stripeclient.DefaultAPIBase)
	def(&c.SuccessURL, DefaultSuccessURL)
	def(&c.CancelURL, DefaultCancelURL)
	def(&c.PortalReturnURL, DefaultPortalReturnURL)
	def(&c.Onboarding.RefreshURL, DefaultOnboardingRefreshURL)
	def(&c.Onboarding.ReturnURL, DefaultOnboardingReturnURL)
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.StripeTimeout == 0 {
		c.StripeTimeout = DefaultStripeTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.AccessWorkers == 0 {
		c.AccessWorkers = DefaultAccessWorkers
	}
	if c.AccessBatch == 0 {
		c.AccessBatch = DefaultAccessBatch
	}
	if len(c.AllowedHosts) == 0 {
		for _, s := range []string{c.SuccessURL, c.CancelURL, c.PortalReturnURL, c.Onboarding.RefreshURL, c.Onboarding.ReturnURL} {
			if u, err := url.Parse(s); err == nil && u.Hostname() != "" && !slices.Contains(c.AllowedHosts, strings.ToLower(u.Hostname())) {
				c.AllowedHosts = append(c.AllowedHosts, strings.ToLower(u.Hostname()))
			}
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// WithDefaults returns c with its zero fields filled, as New fills them.
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

// validate checks the settings; messages name the variable.
func (c *Config) validate() error {
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("api: %s %s", name, fmt.Sprintf(format, a...)))
	}
	for name, addr := range map[string]string{"API_ADDR": c.Addr, "ADMIN_ADDR": c.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q must be a listen address such as :8081", addr)
		}
	}
	if c.Addr == c.AdminAddr && !strings.HasSuffix(c.Addr, ":0") {
		bad("ADMIN_ADDR", "must differ from API_ADDR: the admin endpoints never share the API listener")
	}
	if len(c.Keys) == 0 {
		bad("API_KEYS", "is required: a comma-separated list of bearer keys")
	}
	for i, k := range c.Keys {
		// Never echo a key, not even in part.
		if len(k) < MinKeyLength || strings.ContainsAny(k, " \t\r\n,") {
			bad("API_KEYS", "key #%d must be at least %d characters without spaces or commas", i+1, MinKeyLength)
		}
	}
	if c.StripeSecretKey == "" {
		bad("STRIPE_SECRET_KEY", "is required to create Checkout Sessions (sk_… or a restricted rk_… key with write access to Checkout Sessions, Subscriptions and Billing Portal sessions)")
	}
	if err := c.stripe().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("api: %w", err))
	}
	for name, s := range map[string]string{"CHECKOUT_SUCCESS_URL": c.SuccessURL, "CHECKOUT_CANCEL_URL": c.CancelURL,
		"BILLING_PORTAL_RETURN_URL":    c.PortalReturnURL,
		"PAYEE_ONBOARDING_REFRESH_URL": c.Onboarding.RefreshURL, "PAYEE_ONBOARDING_RETURN_URL": c.Onboarding.ReturnURL} {
		if err := checkRedirect(s, nil); err != nil {
			bad(name, "%q %v", s, err)
		}
	}
	if (payout.OnboardingConfig{RefreshURL: DefaultOnboardingRefreshURL, ReturnURL: DefaultOnboardingReturnURL,
		Country: c.Onboarding.Country}).Validate() != nil {
		bad("PAYEE_ONBOARDING_COUNTRY", "%q must be two upper-case letters (ISO 3166-1 alpha-2), or empty for the platform's country", c.Onboarding.Country)
	}
	if c.SessionTTL < MinSessionTTL || c.SessionTTL > MaxSessionTTL {
		bad("CHECKOUT_SESSION_TTL", "%s must be between %s and %s (Stripe's bounds for expires_at)", c.SessionTTL, MinSessionTTL, MaxSessionTTL)
	}
	if c.RateLimit < 0 {
		bad("API_RATE_LIMIT", "must not be negative (0 turns it off)")
	}
	if c.ShutdownTimeout < 0 {
		bad("API_SHUTDOWN_TIMEOUT", "must not be negative")
	}
	if c.AccessWorkers < 1 || c.AccessWorkers > MaxAccessWorkers {
		bad("API_ACCESS_WORKERS", "%d must be between 1 and %d", c.AccessWorkers, MaxAccessWorkers)
	}
	if c.AccessBatch < 1 || c.AccessBatch > MaxAccessBatch {
		bad("API_ACCESS_BATCH", "%d must be between 1 and %d", c.AccessBatch, MaxAccessBatch)
	}
	return errors.Join(errs...)
}

// checkRedirect checks a success or cancel URL: absolute http(s), and when
// allowed is not nil, a host on the allow-list (an entry ".example.com"
// allows every subdomain of example.com).
func checkRedirect(s string, allowed []string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must be an http or https URL")
	}
	if u.Hostname() == "" {
		return errors.New("must name a host")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if allowed == nil {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, a := range allowed {
		if host == a || strings.HasPrefix(a, ".") && strings.HasSuffix(host, a) {
			return nil
		}
	}
	return fmt.Errorf("host %q is not on the allow-list (CHECKOUT_ALLOWED_HOSTS)", host)
}
