package processorconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/subscription"
)

func TestParsePurchase(t *testing.T) {
	tests := []struct {
		env    map[string]string
		revoke bool
		bad    bool
	}{
		{map[string]string{}, false, false},
		{map[string]string{"PURCHASE_REVOKE_ON_PARTIAL_REFUND": "true"}, true, false},
		{map[string]string{"PURCHASE_REVOKE_ON_PARTIAL_REFUND": "maybe"}, false, true},
	}
	for _, tt := range tests {
		p := config.NewParser(config.MapEnv(tt.env))
		c := processorconfig.ParsePurchase(p)
		if (p.Err() != nil) != tt.bad || c.Access.RevokeOnPartialRefund != tt.revoke {
			t.Errorf("env %v: config %+v err %v", tt.env, c, p.Err())
		}
	}
}

func TestParseRelay(t *testing.T) {
	p := config.NewParser(config.MapEnv(map[string]string{"OUTBOX_POLL_INTERVAL": "50ms", "OUTBOX_BATCH_SIZE": "20"}))
	c := processorconfig.ParseRelay(p)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 50*time.Millisecond || c.BatchSize != 20 || c.PublishTimeout != 5*time.Second || c.MaxBackoff != 30*time.Second {
		t.Errorf("config = %+v", c)
	}
	p = config.NewParser(config.MapEnv(map[string]string{"OUTBOX_BATCH_SIZE": "0"}))
	processorconfig.ParseRelay(p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "OUTBOX_BATCH_SIZE") {
		t.Errorf("bad batch size: %v", err)
	}
}

func TestParseSubscription(t *testing.T) {
	c, err := processorconfig.Parse(config.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subscription.RefetchTimeout != subscription.DefaultRefetchTimeout || c.Subscription.SweepInterval != subscription.DefaultSweepInterval ||
		c.Subscription.Stripe.Key != "" {
		t.Errorf("defaults = %+v", c.Subscription)
	}
	c, err = processorconfig.Parse(config.MapEnv(map[string]string{
		"SUBSCRIPTION_REFETCH_TIMEOUT": "3s", "SUBSCRIPTION_SWEEP_INTERVAL": "1m",
		"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_API_BASE": "http://127.0.0.1:12111", "STRIPE_MAX_NETWORK_RETRIES": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Subscription
	if s.RefetchTimeout != 3*time.Second || s.SweepInterval != time.Minute || s.Stripe.Key != "sk_test_123" ||
		s.Stripe.APIBase != "http://127.0.0.1:12111" || s.Stripe.MaxNetworkRetries != 2 {
		t.Errorf("parsed = %+v", s)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SUBSCRIPTION_REFETCH_TIMEOUT": "10ms"}, "SUBSCRIPTION_REFETCH_TIMEOUT"},
		{map[string]string{"SUBSCRIPTION_REFETCH_TIMEOUT": "2m"}, "SUBSCRIPTION_REFETCH_TIMEOUT"},
		{map[string]string{"SUBSCRIPTION_SWEEP_INTERVAL": "0s"}, "SUBSCRIPTION_SWEEP_INTERVAL"},
		{map[string]string{"SUBSCRIPTION_SWEEP_INTERVAL": "soon"}, "SUBSCRIPTION_SWEEP_INTERVAL"},
	} {
		_, err := processorconfig.Parse(config.MapEnv(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: %v, want an error naming %s", tt.env, err, tt.want)
		}
	}
}
