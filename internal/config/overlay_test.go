package config_test

import (
	"testing"

	"github.com/paystream/paystream/internal/config"
)

func TestOverlay(t *testing.T) {
	base := config.MapEnv(map[string]string{"NATS_URL": "nats://base:4222", "EDGE_ADDR": ":8080", "LOG_LEVEL": "debug"})
	env := config.Overlay(base, map[string]string{"NATS_URL": "nats://dev:4223", "LOG_LEVEL": ""})
	inner := config.Overlay(env, map[string]string{"ADMIN_ADDR": "127.0.0.1:0"})
	for _, tc := range []struct{ name, key, want string }{
		{"overridden", "NATS_URL", "nats://dev:4223"},
		{"read through", "EDGE_ADDR", ":8080"},
		{"empty override hides the variable", "LOG_LEVEL", ""},
		{"unset everywhere", "DATABASE_URL", ""},
		{"stacked override", "ADMIN_ADDR", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inner(tc.key); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
	if got := base("NATS_URL"); got != "nats://base:4222" {
		t.Errorf("Overlay changed its base: NATS_URL = %q", got)
	}
}
