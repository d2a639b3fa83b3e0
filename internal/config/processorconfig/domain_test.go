package processorconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
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
