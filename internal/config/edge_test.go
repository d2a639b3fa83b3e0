package config_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/envvar"
)

func parseEdge(t *testing.T, env map[string]string) (config.Edge, error) {
	t.Helper()
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return config.ParseEdge(config.MapEnv(env), environ)
}

func TestParseEdgeDefaults(t *testing.T) {
	e, err := parseEdge(t, map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_abc"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Addr != ":8080" || e.AdminAddr != ":9090" || e.Tolerance != 300*time.Second ||
		e.MaxBodyBytes != 1<<20 || e.RateLimit != 1000 || e.PublishTimeout != 5*time.Second ||
		e.TrustedProxies != nil || e.NATSURL != config.DefaultNATSURL {
		t.Errorf("defaults = %+v", e)
	}
	if diff := cmp.Diff(map[string][]string{"default": {"whsec_abc"}}, e.Endpoints); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

func TestParseEdgeEndpointsAndRotation(t *testing.T) {
	e, err := parseEdge(t, map[string]string{
		"STRIPE_WEBHOOK_SECRET":           "whsec_new, whsec_old",
		"STRIPE_WEBHOOK_SECRET_BOOKING":   "whsec_b",
		"STRIPE_WEBHOOK_SECRET_EU_SHOP":   "whsec_e,whsec_e",
		"STRIPE_WEBHOOK_SECRET_UNUSED":    "  ",
		"EDGE_TRUSTED_PROXIES":            "10.0.0.0/8, 192.168.1.7,fd00::/8",
		"EDGE_RATE_LIMIT":                 "0",
		"STRIPE_WEBHOOK_TOLERANCE":        "10m",
		"EDGE_PUBLISH_TIMEOUT":            "2s",
		"EDGE_MAX_BODY_BYTES":             "2048",
		"UNRELATED_STRIPE_WEBHOOK_SECRET": "x",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"default": {"whsec_new", "whsec_old"},
		"booking": {"whsec_b"},
		"eu_shop": {"whsec_e"},
	}
	if diff := cmp.Diff(want, e.Endpoints); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	wantPfx := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8")}
	if diff := cmp.Diff(wantPfx, e.TrustedProxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("trusted proxies (-want +got):\n%s", diff)
	}
	if e.RateLimit != 0 || e.Tolerance != 10*time.Minute || e.PublishTimeout != 2*time.Second || e.MaxBodyBytes != 2048 {
		t.Errorf("settings = %+v", e)
	}
	if s := e.String(); strings.Contains(s, "whsec_") {
		t.Errorf("String() leaks a secret: %s", s)
	}
}

func TestParseEdgeErrorsNameTheVariableAndHideSecrets(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"no endpoint", map[string]string{}, "STRIPE_WEBHOOK_SECRET"},
		{"not whsec", map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_live_topsecret"}, "STRIPE_WEBHOOK_SECRET"},
		{"bare prefix", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_"}, "STRIPE_WEBHOOK_SECRET"},
		{"empty rotation slot", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret,"}, "STRIPE_WEBHOOK_SECRET"},
		{"named bad secret", map[string]string{"STRIPE_WEBHOOK_SECRET_BOOKING": "topsecret"}, "STRIPE_WEBHOOK_SECRET_BOOKING"},
		{"bad endpoint name", map[string]string{"STRIPE_WEBHOOK_SECRET_A.B": "whsec_topsecret"}, "STRIPE_WEBHOOK_SECRET_A.B"},
		{"empty endpoint name", map[string]string{"STRIPE_WEBHOOK_SECRET_": "whsec_topsecret"}, "STRIPE_WEBHOOK_SECRET_"},
		{"reserved default", map[string]string{"STRIPE_WEBHOOK_SECRET_DEFAULT": "whsec_topsecret"}, "STRIPE_WEBHOOK_SECRET_DEFAULT"},
		{"bad tolerance", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "STRIPE_WEBHOOK_TOLERANCE": "5"}, "STRIPE_WEBHOOK_TOLERANCE"},
		{"negative rate", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_RATE_LIMIT": "-1"}, "EDGE_RATE_LIMIT"},
		{"bad proxy", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "EDGE_TRUSTED_PROXIES"},
		{"bad addr", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_ADDR": "8080"}, "EDGE_ADDR"},
		{"same addr", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_ADDR": ":9000", "ADMIN_ADDR": ":9000"}, "ADMIN_ADDR"},
		{"tiny body limit", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_MAX_BODY_BYTES": "10"}, "EDGE_MAX_BODY_BYTES"},
		{"bad publish timeout", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "EDGE_PUBLISH_TIMEOUT": "0s"}, "EDGE_PUBLISH_TIMEOUT"},
		{"common still parsed", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_topsecret", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseEdge(t, tt.env)
			if err == nil {
				t.Fatal("ParseEdge succeeded, want an error")
			}
			var ve *envvar.Error
			if !errors.As(err, &ve) || ve.Name != tt.wantVar {
				t.Errorf("error %q does not name %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}
