// Package stripeclient is how paystream talks to the Stripe API: the purchase
// API (creating Checkout Sessions) and reconcile (listing events) build their
// stripe-go clients here, with the same API base, retries, timeout and
// logging, so their defaults and bounds live here once.
package stripeclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/stripe/stripe-go/v76"
)

const (
	// DefaultAPIBase is Stripe's API; STRIPE_API_BASE overrides it for tests
	// (stripe-mock, a local fake of the Events API) and for egress proxies.
	DefaultAPIBase = stripe.APIURL
	// DefaultMaxNetworkRetries is how often stripe-go itself retries a
	// request that failed in a retryable way (connection errors, 5xx, 409,
	// and 429 answered with Stripe-Should-Retry: true).
	DefaultMaxNetworkRetries = 5
	// MaxNetworkRetries bounds STRIPE_MAX_NETWORK_RETRIES.
	MaxNetworkRetries = 10
	// DefaultTimeout bounds one HTTP attempt to Stripe.
	DefaultTimeout = 30 * time.Second
	// MinTimeout is the shortest attempt a service may configure: Stripe's
	// own answers take hundreds of milliseconds.
	MinTimeout = time.Second
)

// Config is one service's access to the Stripe API. Zero fields take the
// defaults.
type Config struct {
	Key               string        // STRIPE_SECRET_KEY: sk_… or a restricted rk_…; required
	APIBase           string        // STRIPE_API_BASE; default DefaultAPIBase
	MaxNetworkRetries int           // STRIPE_MAX_NETWORK_RETRIES: stripe-go's own retries per request; 0 = none
	Timeout           time.Duration // one HTTP attempt; default DefaultTimeout
	// HTTPClient carries the calls; nil means a client with Timeout. Tests
	// reach fakes through it.
	HTTPClient *http.Client
}

func (c *Config) setDefaults() {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate checks c with its defaults applied (to a copy); messages name
// the environment variable. The key is not checked here: each service says
// what its key must be allowed to do.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("STRIPE_API_BASE %q must be an http(s) URL", c.APIBase))
	}
	if c.MaxNetworkRetries < 0 || c.MaxNetworkRetries > MaxNetworkRetries {
		errs = append(errs, fmt.Errorf("STRIPE_MAX_NETWORK_RETRIES must be between 0 and %d", MaxNetworkRetries))
	}
	if c.Timeout < MinTimeout && c.HTTPClient == nil {
		errs = append(errs, fmt.Errorf("the Stripe timeout %s must be at least %s", c.Timeout, MinTimeout))
	}
	return errors.Join(errs...)
}

// Client is a stripe-go backend with the key to use on it: what stripe-go's
// resource clients (session.Client, event.Client, …) are made of.
type Client struct {
	Backend stripe.Backend
	Key     string
}

// New returns the client of cfg on a private stripe-go backend: nothing
// touches stripe-go's package-level key or backends. stripe-go retries
// connection errors, 5xx, 409 and answers carrying Stripe-Should-Retry: true
// up to MaxNetworkRetries times with its own backoff, reusing a request's
// Idempotency-Key, so a retried create never makes a second object.
func New(cfg Config, log *slog.Logger) (Client, error) {
	cfg.setDefaults()
	if cfg.Key == "" {
		return Client{}, errors.New("stripeclient: STRIPE_SECRET_KEY is required")
	}
	if err := cfg.Validate(); err != nil {
		return Client{}, fmt.Errorf("stripeclient: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(cfg.APIBase),
		MaxNetworkRetries: stripe.Int64(int64(cfg.MaxNetworkRetries)),
		HTTPClient:        hc,
		LeveledLogger:     logger{log.With("component", "stripe-go")},
		EnableTelemetry:   stripe.Bool(false),
	})
	return Client{Backend: b, Key: cfg.Key}, nil
}

// logger routes stripe-go's logging into slog. Its per-request info lines go
// to debug, so a healthy service logs nothing per call; its retry notices to
// warn; its error lines to debug too, since every error also comes back to
// the caller, which logs it once with its own context (request id, run id).
type logger struct{ log *slog.Logger }

var _ stripe.LeveledLoggerInterface = logger{}

func (l logger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Infof(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l logger) Errorf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
