package apiconfig_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/stripeclient"
)

func TestParse(t *testing.T) {
	const (
		k1  = "key_one_0123456789"
		k2  = "key_two_0123456789"
		sk  = "sk_test_51Habcdefghijklmnop"
		bad = "tiny"
	)
	base := map[string]string{"API_KEYS": k1 + ", " + k2, "STRIPE_SECRET_KEY": sk}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := apiconfig.Parse(config.MapEnv(base))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Config
	if a.Addr != ":8081" || a.AdminAddr != ":9092" || len(a.Keys) != 2 || a.Keys[1] != k2 || a.StripeSecretKey != sk ||
		a.StripeAPIBase != stripeclient.DefaultAPIBase || a.StripeMaxNetworkRetries != 5 || a.SuccessURL != api.DefaultSuccessURL ||
		a.CancelURL != api.DefaultCancelURL || a.SessionTTL != time.Hour || a.RateLimit != api.DefaultRateLimit || c.DBMaxConns != 10 ||
		a.PortalReturnURL != api.DefaultPortalReturnURL || a.AccessWorkers != api.DefaultAccessWorkers ||
		a.AccessBatch != api.DefaultAccessBatch || c.GCPercent != api.DefaultGCPercent {
		t.Errorf("defaults = %+v", c)
	}
	for _, tt := range []struct {
		env                  []string
		workers, batch, gogc int
	}{
		{[]string{"API_ACCESS_WORKERS", "3", "API_ACCESS_BATCH", "1"}, 3, 1, api.DefaultGCPercent},
		{[]string{"GOGC", "150"}, api.DefaultAccessWorkers, api.DefaultAccessBatch, 150},
		{[]string{"GOGC", "off"}, api.DefaultAccessWorkers, api.DefaultAccessBatch, -1},
	} {
		c, err := apiconfig.Parse(config.MapEnv(with(tt.env...)))
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if c.AccessWorkers != tt.workers || c.AccessBatch != tt.batch || c.GCPercent != tt.gogc {
			t.Errorf("%v: workers %d, batch %d, GOGC %d", tt.env, c.AccessWorkers, c.AccessBatch, c.GCPercent)
		}
	}
	if o := a.Onboarding; o.RefreshURL != api.DefaultOnboardingRefreshURL || o.ReturnURL != api.DefaultOnboardingReturnURL || o.Country != "" ||
		!slices.Equal(a.WithDefaults().AllowedHosts, []string{"localhost"}) {
		t.Errorf("onboarding defaults = %+v, allowed hosts %v", o, a.WithDefaults().AllowedHosts)
	}
	c, err = apiconfig.Parse(config.MapEnv(with("PAYEE_ONBOARDING_REFRESH_URL", "https://creators.example/payouts/again",
		"PAYEE_ONBOARDING_RETURN_URL", "https://creators.example/payouts/done", "PAYEE_ONBOARDING_COUNTRY", "DE")))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Onboarding; o.RefreshURL != "https://creators.example/payouts/again" || o.ReturnURL != "https://creators.example/payouts/done" ||
		o.Country != "DE" || !slices.Contains(c.WithDefaults().AllowedHosts, "creators.example") {
		t.Errorf("onboarding = %+v, allowed hosts %v", o, c.WithDefaults().AllowedHosts)
	}
	c, err = apiconfig.Parse(config.MapEnv(with("API_ADDR", "127.0.0.1:7000", "ADMIN_ADDR", "127.0.0.1:7001",
		"STRIPE_API_BASE", "http://127.0.0.1:12111", "CHECKOUT_SUCCESS_URL", "https://shop.example/ok",
		"CHECKOUT_CANCEL_URL", "https://shop.example/no", "CHECKOUT_ALLOWED_HOSTS", "shop.example, .cdn.example",
		"CHECKOUT_SESSION_TTL", "2h", "API_RATE_LIMIT", "0", "API_STRIPE_TIMEOUT", "10s",
		"BILLING_PORTAL_RETURN_URL", "https://shop.example/account")))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Config; a.Addr != "127.0.0.1:7000" || a.StripeAPIBase != "http://127.0.0.1:12111" || a.SessionTTL != 2*time.Hour ||
		len(a.AllowedHosts) != 2 || a.AllowedHosts[1] != ".cdn.example" || a.RateLimit != 0 || a.StripeTimeout != 10*time.Second ||
		a.PortalReturnURL != "https://shop.example/account" {
		t.Errorf("parsed = %+v", a)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no keys", map[string]string{"STRIPE_SECRET_KEY": sk}, "API_KEYS"},
		{"short key", with("API_KEYS", k1+","+bad), "API_KEYS"},
		{"no stripe key", map[string]string{"API_KEYS": k1}, "STRIPE_SECRET_KEY"},
		{"publishable stripe key", with("STRIPE_SECRET_KEY", "pk_test_abc"), "STRIPE_SECRET_KEY"},
		{"ttl over 24h", with("CHECKOUT_SESSION_TTL", "25h"), "CHECKOUT_SESSION_TTL"},
		{"bad success url", with("CHECKOUT_SUCCESS_URL", "ftp://x"), "CHECKOUT_SUCCESS_URL"},
		{"bad portal return url", with("BILLING_PORTAL_RETURN_URL", "ftp://x"), "BILLING_PORTAL_RETURN_URL"},
		{"portal return url with credentials", with("BILLING_PORTAL_RETURN_URL", "https://u:p@shop.example/"), "BILLING_PORTAL_RETURN_URL"},
		{"bad hosts", with("CHECKOUT_ALLOWED_HOSTS", "https://shop.example"), "CHECKOUT_ALLOWED_HOSTS"},
		{"bad onboarding refresh url", with("PAYEE_ONBOARDING_REFRESH_URL", "mailto:x@example.com"), "PAYEE_ONBOARDING_REFRESH_URL"},
		{"onboarding return url with credentials", with("PAYEE_ONBOARDING_RETURN_URL", "https://u:p@x.example/"), "PAYEE_ONBOARDING_RETURN_URL"},
		{"bad onboarding country", with("PAYEE_ONBOARDING_COUNTRY", "usa"), "PAYEE_ONBOARDING_COUNTRY"},
		{"same listener", with("API_ADDR", ":7000", "ADMIN_ADDR", ":7000"), "ADMIN_ADDR"},
		{"bad api addr", with("API_ADDR", "eighty"), "API_ADDR"},
		{"no access workers", with("API_ACCESS_WORKERS", "0"), "API_ACCESS_WORKERS"},
		{"batch over the bound", with("API_ACCESS_BATCH", "1001"), "API_ACCESS_BATCH"},
		{"GOGC not a number", with("GOGC", "lots"), "GOGC"},
		{"GOGC zero", with("GOGC", "0"), "GOGC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apiconfig.Parse(config.MapEnv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
			for _, secret := range []string{bad, sk, k1, "pk_test_abc"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes a secret: %v", err)
				}
			}
		})
	}
}
