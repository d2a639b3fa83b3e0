package outbox_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/outbox"
)

func TestParseRelayConfig(t *testing.T) {
	p := config.NewParser(config.MapEnv(map[string]string{"OUTBOX_POLL_INTERVAL": "50ms", "OUTBOX_BATCH_SIZE": "20"}))
	c := outbox.ParseRelayConfig(p)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 50*time.Millisecond || c.BatchSize != 20 || c.PublishTimeout != 5*time.Second || c.MaxBackoff != 30*time.Second {
		t.Errorf("config = %+v", c)
	}
	p = config.NewParser(config.MapEnv(map[string]string{"OUTBOX_BATCH_SIZE": "0"}))
	outbox.ParseRelayConfig(p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "OUTBOX_BATCH_SIZE") {
		t.Errorf("bad batch size: %v", err)
	}
}
