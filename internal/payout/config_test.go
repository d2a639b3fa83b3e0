package payout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/envvar"
)

func TestParseMinimums(t *testing.T) {
	tests := []struct {
		in   string
		want Minimums
		bad  string
	}{
		{in: "100", want: Minimums{Default: 100}},
		{in: "100,jpy=50, usd=500", want: Minimums{Default: 100, PerCurrency: map[string]int64{"jpy": 50, "usd": 500}}},
		{in: "0", bad: "at least 1"},
		{in: "-5", bad: "at least 1"},
		{in: "100,usd=0", bad: "usd"},
		{in: "usd=100", bad: "must start"},
		{in: "100,200", bad: "only the first"},
		{in: "100,USD=5", bad: "lower-case"},
		{in: "100,usd=5,usd=6", bad: "twice"},
		{in: "1e3", bad: "whole number"},
	}
	for _, tt := range tests {
		got, err := ParseMinimums(tt.in)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("ParseMinimums(%q) = %v, %v; want an error mentioning %q", tt.in, got, err, tt.bad)
			}
			continue
		}
		if err != nil || got.String() != tt.want.String() || got.For("jpy") != tt.want.For("jpy") || got.For("eur") != tt.want.Default {
			t.Errorf("ParseMinimums(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if again, err := ParseMinimums(got.String()); err != nil || again.String() != got.String() {
			t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
		}
	}
	if m, _ := ParseMinimums("100"); m.PerCurrency != nil {
		t.Error("a single minimum must leave PerCurrency nil, as the default does")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"interval too short", func(c *Config) { c.Interval = time.Second }, "PAYOUT_INTERVAL"},
		{"interval too long", func(c *Config) { c.Interval = 48 * time.Hour }, "PAYOUT_INTERVAL"},
		{"backoff above its max", func(c *Config) { c.RetryBackoff, c.MaxRetryBackoff = time.Hour, time.Minute }, "PAYOUT_MAX_RETRY_BACKOFF"},
		{"workers", func(c *Config) { c.Workers = 1000 }, "PAYOUT_WORKERS"},
		{"minimum", func(c *Config) { c.Minimum = Minimums{Default: 100, PerCurrency: map[string]int64{"usd": 0}} }, "PAYOUT_MINIMUM_CENTS"},
		{"window below the interval", func(c *Config) { c.Interval, c.ReconcileWindow = 2*time.Hour, time.Hour }, "PAYOUT_RECONCILE_WINDOW"},
		{"negative verify interval", func(c *Config) { c.VerifyInterval = -time.Second }, "LEDGER_VERIFY_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			var ee *envvar.Error
			if !errors.As(err, &ee) || ee.Name != tt.want {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := DefaultConfig()
	c.Interval = time.Hour
	if err := c.CheckStripeKey(""); err == nil || !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Errorf("periodic run without a key: %v", err)
	}
}

func TestBackoffDoublesUpToTheMax(t *testing.T) {
	c := Config{RetryBackoff: time.Minute, MaxRetryBackoff: 10 * time.Minute}
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 4: 8 * time.Minute, 5: 10 * time.Minute, 40: 10 * time.Minute} {
		if got := c.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
