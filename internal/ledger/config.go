package ledger

import (
	"fmt"
	"time"
)

// DefaultHold is how long a sale's money stays pending after purchased_at
// before a release makes it available (PAYOUT_HOLD).
const DefaultHold = 168 * time.Hour

// MaxHold bounds the hold: money held for more than a year is a typo.
const MaxHold = 366 * 24 * time.Hour

// Config holds the ledger's settings; internal/config maps the environment
// onto it.
type Config struct {
	Hold time.Duration // PAYOUT_HOLD: time after purchased_at before release; 0 releases at once
}

// DefaultConfig returns the contract's defaults.
func DefaultConfig() Config { return Config{Hold: DefaultHold} }

// Validate checks the settings.
func (c Config) Validate() error {
	if c.Hold < 0 || c.Hold > MaxHold {
		return fmt.Errorf("ledger: PAYOUT_HOLD=%s outside [0, %s]", c.Hold, MaxHold)
	}
	return nil
}
