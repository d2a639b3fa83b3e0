package payout

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/envvar"
)

// Defaults and bounds of Config.
const (
	// DefaultMinimumCents is the smallest balance paid out, in minor units
	// of any currency without a minimum of its own (PAYOUT_MINIMUM_CENTS).
	DefaultMinimumCents = 100
	// DefaultRetryBackoff is the wait before the first new key after Stripe
	// spent one; it doubles with each spent key up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff    = time.Minute
	DefaultMaxRetryBackoff = 6 * time.Hour
	// ListAfter is how long after a payout's first request a retry lists the
	// transfer group before creating: Stripe forgets an idempotency key
	// after about 24 hours, after which the same key would create a second
	// transfer. It is fixed below Stripe's horizon, with an hour to spare.
	ListAfter = 23 * time.Hour
	// DefaultWorkers is how many payouts a run has in flight at once.
	DefaultWorkers = 4
	MaxWorkers     = 64
	// MinInterval and MaxInterval bound PAYOUT_INTERVAL when it is on.
	MinInterval = time.Minute
	MaxInterval = 24 * time.Hour
	// DefaultVerifyInterval is how often the periodic job runs
	// ledger.Verify (LEDGER_VERIFY_INTERVAL).
	DefaultVerifyInterval = 24 * time.Hour
	// DefaultReconcileWindow is how far back the periodic job matches
	// Stripe's transfers to payouts (PAYOUT_RECONCILE_WINDOW).
	DefaultReconcileWindow = 72 * time.Hour
	// MaxReconcileWindow is Stripe's list horizon for a routine check.
	MaxReconcileWindow = 90 * 24 * time.Hour
)

// Config is the payout engine's settings; internal/config/processorconfig
// maps the environment onto it.
type Config struct {
	Minimum         Minimums      // PAYOUT_MINIMUM_CENTS
	Interval        time.Duration // PAYOUT_INTERVAL: periodic run in the processor group; 0 = off
	RetryBackoff    time.Duration // PAYOUT_RETRY_BACKOFF: wait before the first new key after a spent one
	MaxRetryBackoff time.Duration // PAYOUT_MAX_RETRY_BACKOFF: the longest wait between keys
	Workers         int           // PAYOUT_WORKERS: payouts in flight at once in one run
	VerifyInterval  time.Duration // LEDGER_VERIFY_INTERVAL: ledger.Verify in the periodic job; 0 = never
	ReconcileWindow time.Duration // PAYOUT_RECONCILE_WINDOW: transfers matched after each periodic run; 0 = off
	// Now is the clock; nil is time.Now. Tests move it past the 23-hour
	// rule and the backoff.
	Now func() time.Time
}

// DefaultConfig returns the defaults: payouts off, 100 minor units minimum.
func DefaultConfig() Config {
	return Config{
		Minimum:         Minimums{Default: DefaultMinimumCents},
		RetryBackoff:    DefaultRetryBackoff,
		MaxRetryBackoff: DefaultMaxRetryBackoff,
		Workers:         DefaultWorkers,
		VerifyInterval:  DefaultVerifyInterval,
		ReconcileWindow: DefaultReconcileWindow,
	}
}

// setDefaults fills the zero fields whose zero is not a setting.
func (c *Config) setDefaults() {
	if c.Minimum.Default == 0 {
		c.Minimum.Default = DefaultMinimumCents
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks c with its defaults applied (to a copy). The error joins
// one *envvar.Error, naming the variable, per broken rule.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(name, value, reason string) { errs = append(errs, envvar.New(name, value, reason)) }
	if err := c.Minimum.validate(); err != nil {
		bad("PAYOUT_MINIMUM_CENTS", c.Minimum.String(), err.Error())
	}
	if c.Interval != 0 && (c.Interval < MinInterval || c.Interval > MaxInterval) {
		bad("PAYOUT_INTERVAL", c.Interval.String(), fmt.Sprintf("must be 0 (off) or between %s and %s", MinInterval, MaxInterval))
	}
	if c.RetryBackoff < 0 {
		bad("PAYOUT_RETRY_BACKOFF", c.RetryBackoff.String(), "must be positive")
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		bad("PAYOUT_MAX_RETRY_BACKOFF", c.MaxRetryBackoff.String(), "must not be shorter than PAYOUT_RETRY_BACKOFF")
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		bad("PAYOUT_WORKERS", strconv.Itoa(c.Workers), fmt.Sprintf("must be between 1 and %d", MaxWorkers))
	}
	if c.VerifyInterval < 0 {
		bad("LEDGER_VERIFY_INTERVAL", c.VerifyInterval.String(), "must be 0 (never) or positive")
	}
	if c.ReconcileWindow < 0 || c.ReconcileWindow > MaxReconcileWindow {
		bad("PAYOUT_RECONCILE_WINDOW", c.ReconcileWindow.String(), fmt.Sprintf("must be 0 (off) or at most %s", MaxReconcileWindow))
	}
	if c.ReconcileWindow != 0 && c.Interval != 0 && c.ReconcileWindow < c.Interval {
		bad("PAYOUT_RECONCILE_WINDOW", c.ReconcileWindow.String(),
			"must not be shorter than PAYOUT_INTERVAL, or transfers made between two runs are never matched")
	}
	return errors.Join(errs...)
}

// CheckStripeKey returns the error of a periodic run without a Stripe key:
// the run creates transfers, so PAYOUT_INTERVAL > 0 needs STRIPE_SECRET_KEY.
func (c Config) CheckStripeKey(key string) error {
	if c.Interval > 0 && key == "" {
		return envvar.New("STRIPE_SECRET_KEY", "", "is required when PAYOUT_INTERVAL > 0 (a key with write access to Transfers)")
	}
	return nil
}

// backoff is the wait before key n+1 after key n was spent: RetryBackoff,
// doubled per spent key, capped at MaxRetryBackoff.
func (c Config) backoff(n int) time.Duration {
	d := c.RetryBackoff
	for i := 1; i < n && d < c.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxRetryBackoff)
}

// Minimums are the smallest available balances paid out, per currency.
type Minimums struct {
	Default     int64            // any currency not in PerCurrency
	PerCurrency map[string]int64 // lower-case ISO 4217 code → minor units
}

// For returns the minimum of currency.
func (m Minimums) For(currency string) int64 {
	if v, ok := m.PerCurrency[currency]; ok {
		return v
	}
	return m.Default
}

// String writes m as PAYOUT_MINIMUM_CENTS reads it: "100" or
// "100,jpy=50,usd=500".
func (m Minimums) String() string {
	parts := []string{strconv.FormatInt(m.Default, 10)}
	for _, cur := range slices.Sorted(maps.Keys(m.PerCurrency)) {
		parts = append(parts, cur+"="+strconv.FormatInt(m.PerCurrency[cur], 10))
	}
	return strings.Join(parts, ",")
}

var currencyRE = regexp.MustCompile(`^[a-z]{3}$`)

// ParseMinimums reads PAYOUT_MINIMUM_CENTS: a minimum for every currency,
// optionally followed by per-currency ones, e.g. "100" or "100,jpy=50".
func ParseMinimums(s string) (Minimums, error) {
	var m Minimums
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		cur, amount, per := strings.Cut(part, "=")
		if !per {
			amount = cur
		}
		v, err := strconv.ParseInt(strings.TrimSpace(amount), 10, 64)
		if err != nil {
			return Minimums{}, fmt.Errorf("%q is not a whole number of minor units", amount)
		}
		switch {
		case i == 0 && !per:
			m.Default = v
		case i == 0:
			return Minimums{}, errors.New(`must start with the minimum of every currency, e.g. "100,jpy=50"`)
		case !per:
			return Minimums{}, fmt.Errorf("%q: only the first value may be without a currency", part)
		default:
			cur = strings.TrimSpace(cur)
			if !currencyRE.MatchString(cur) {
				return Minimums{}, fmt.Errorf("%q is not a lower-case ISO 4217 currency code", cur)
			}
			if m.PerCurrency == nil {
				m.PerCurrency = map[string]int64{}
			}
			if _, dup := m.PerCurrency[cur]; dup {
				return Minimums{}, fmt.Errorf("%s is given twice", cur)
			}
			m.PerCurrency[cur] = v
		}
	}
	return m, m.validate()
}

// validate refuses a minimum below one minor unit: a payout is never of
// nothing or of a negative balance.
func (m Minimums) validate() error {
	if m.Default < 1 {
		return errors.New("every minimum must be at least 1 minor unit")
	}
	for cur, v := range m.PerCurrency {
		if v < 1 {
			return fmt.Errorf("the minimum of %s must be at least 1 minor unit", cur)
		}
	}
	return nil
}
