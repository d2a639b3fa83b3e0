package reconcile

import (
	"errors"
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/envvar"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/streams"
)

// Bounds of Settings.
const (
	// MinInterval keeps the periodic mode from paging through the Stripe
	// Events API more than once a minute.
	MinInterval = time.Minute
	// MaxInterval is the longest RECONCILE_INTERVAL.
	MaxInterval = 24 * time.Hour
	// MinWindow is the shortest RECONCILE_WINDOW.
	MinWindow = time.Minute
)

// Settings are missed-event recovery's settings, shared by the one-shot
// `paystream reconcile` command and the processor's periodic mode.
// internal/config/processorconfig maps the environment onto them; the rules
// and defaults are here.
type Settings struct {
	SecretKey string // STRIPE_SECRET_KEY: sk_… or rk_… (a restricted key needs read access to Events)
	APIBase   string // STRIPE_API_BASE: Stripe API base URL; default stripeclient.DefaultAPIBase
	// MaxNetworkRetries is STRIPE_MAX_NETWORK_RETRIES, stripe-go's own
	// retries per request; 0 is none (the environment's default is
	// stripeclient.DefaultMaxNetworkRetries).
	MaxNetworkRetries int
	Interval          time.Duration // RECONCILE_INTERVAL: periodic mode in the processor; 0 = off
	Window            time.Duration // RECONCILE_WINDOW: how far back a periodic run lists events; default DefaultWindow
	Endpoint          string        // RECONCILE_ENDPOINT: endpoint name recovered events are published under; default streams.DefaultEndpoint
}

// setDefaults fills the zero fields that have a default.
func (s *Settings) setDefaults() {
	if s.APIBase == "" {
		s.APIBase = stripeclient.DefaultAPIBase
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.Endpoint == "" {
		s.Endpoint = streams.DefaultEndpoint
	}
}

// Validate checks s with its defaults applied (to a copy), so a caller can
// fail before it connects to anything. needKey says the caller lists events
// now (the reconcile command); the periodic mode (Interval > 0) always does.
// The error joins one *envvar.Error, naming the variable, per broken rule.
func (s Settings) Validate(needKey bool) error {
	s.setDefaults()
	return s.validate(needKey)
}

// validate checks the settings and the relations between them.
func (s *Settings) validate(needKey bool) error {
	var errs []error
	bad := func(name, value, reason string) {
		errs = append(errs, envvar.New(name, value, reason))
	}
	switch {
	case s.Interval != 0 && s.Interval < MinInterval:
		bad("RECONCILE_INTERVAL", s.Interval.String(), "must be 0 (off) or at least 1m: each run pages through the Stripe Events API")
	case s.Interval > MaxInterval:
		bad("RECONCILE_INTERVAL", s.Interval.String(), fmt.Sprintf("must be between 0s and %s", MaxInterval))
	}
	if s.Window < MinWindow || s.Window > MaxWindow {
		bad("RECONCILE_WINDOW", s.Window.String(), fmt.Sprintf("must be between %s and %s", MinWindow, MaxWindow))
	}
	if s.Interval > s.Window {
		bad("RECONCILE_INTERVAL", s.Interval.String(),
			"must not exceed RECONCILE_WINDOW, or events created between two runs are never listed")
	}
	if !streams.ValidEndpoint(s.Endpoint) {
		bad("RECONCILE_ENDPOINT", s.Endpoint, "must be an endpoint name: lower case letters, digits, _ or -")
	}
	if s.MaxNetworkRetries < 0 || s.MaxNetworkRetries > stripeclient.MaxNetworkRetries {
		bad("STRIPE_MAX_NETWORK_RETRIES", fmt.Sprint(s.MaxNetworkRetries),
			fmt.Sprintf("must be between 0 and %d", stripeclient.MaxNetworkRetries))
	}
	if s.SecretKey == "" && (needKey || s.Interval > 0) {
		bad("STRIPE_SECRET_KEY", "", "is required to list events from the Stripe API (sk_… or a restricted rk_… key with read access to Events)")
	}
	return errors.Join(errs...)
}

// Stripe is the Stripe client's share of s, for NewStripeLister.
func (s Settings) Stripe() stripeclient.Config {
	return stripeclient.Config{Key: s.SecretKey, APIBase: s.APIBase, MaxNetworkRetries: s.MaxNetworkRetries}
}
