package subscription

import (
	"errors"
	"fmt"
	"time"

	"github.com/paystream/paystream/internal/envvar"
	"github.com/paystream/paystream/internal/stripeclient"
)

// Defaults and bounds of Config.
const (
	// DefaultRefetchTimeout bounds one refetch, stripe-go's retries
	// included. The refetch runs inside the event's transaction holding the
	// subscription's row lock, so a slow Stripe must not hold it long: on
	// timeout the event is retried later (stripe_unavailable).
	DefaultRefetchTimeout = 5 * time.Second
	MinRefetchTimeout     = time.Second
	MaxRefetchTimeout     = time.Minute

	// DefaultSweepInterval is how often the sweeper announces ended access
	// (subscriptions.expired) and refreshes the subscription gauges: the
	// announcement comes at most this long after access_until.
	DefaultSweepInterval = 15 * time.Second
	MinSweepInterval     = time.Second
	MaxSweepInterval     = time.Hour
)

// Config holds the processor side of subscriptions' settings;
// internal/config/processorconfig maps the environment onto it.
type Config struct {
	// Stripe is the refetch's access to the Stripe API (STRIPE_SECRET_KEY,
	// STRIPE_API_BASE, STRIPE_MAX_NETWORK_RETRIES). Without a key, an event
	// that needs a refetch is dead-lettered with reason
	// stripe_refetch_unconfigured (NewFetcher).
	Stripe stripeclient.Config
	// RefetchTimeout bounds one refetch (SUBSCRIPTION_REFETCH_TIMEOUT).
	RefetchTimeout time.Duration
	// SweepInterval is the sweeper's period (SUBSCRIPTION_SWEEP_INTERVAL).
	SweepInterval time.Duration
	// Now is the clock of updated_at, outbox times and the sweeper;
	// default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults, without a Stripe key.
func DefaultConfig() Config {
	return Config{RefetchTimeout: DefaultRefetchTimeout, SweepInterval: DefaultSweepInterval}
}

func (c *Config) setDefaults() {
	if c.RefetchTimeout == 0 {
		c.RefetchTimeout = DefaultRefetchTimeout
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks c with its defaults applied (to a copy); each broken rule
// is an *envvar.Error naming its variable.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.RefetchTimeout < MinRefetchTimeout || c.RefetchTimeout > MaxRefetchTimeout {
		errs = append(errs, envvar.New("SUBSCRIPTION_REFETCH_TIMEOUT", c.RefetchTimeout.String(),
			fmt.Sprintf("must be between %s and %s: the refetch holds the subscription's row lock", MinRefetchTimeout, MaxRefetchTimeout)))
	}
	if c.SweepInterval < MinSweepInterval || c.SweepInterval > MaxSweepInterval {
		errs = append(errs, envvar.New("SUBSCRIPTION_SWEEP_INTERVAL", c.SweepInterval.String(),
			fmt.Sprintf("must be between %s and %s", MinSweepInterval, MaxSweepInterval)))
	}
	if c.Stripe.Key != "" {
		if err := c.Stripe.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
