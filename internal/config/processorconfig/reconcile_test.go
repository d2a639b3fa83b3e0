package processorconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeclient"
)

func TestParseReconcile(t *testing.T) {
	const key = "sk_test_51Habcdefghijklmnop"
	tests := []struct {
		name    string
		env     map[string]string
		needKey bool
		want    reconcile.Settings
		wantErr []string // substrings of the error; nil means no error
		wantOne bool     // the error is a single line
	}{
		{name: "defaults without key when not needed", env: map[string]string{},
			want: reconcile.Settings{APIBase: stripeclient.DefaultAPIBase, MaxNetworkRetries: 5, Window: 72 * time.Hour, Endpoint: "default"}},
		{name: "command needs the key", env: map[string]string{}, needKey: true,
			wantErr: []string{"STRIPE_SECRET_KEY", "required"}},
		{name: "periodic mode needs the key", env: map[string]string{"RECONCILE_INTERVAL": "1h"},
			wantErr: []string{"STRIPE_SECRET_KEY", "required"}},
		{name: "everything set", needKey: true, env: map[string]string{
			"STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": "http://127.0.0.1:12111", "STRIPE_MAX_NETWORK_RETRIES": "2",
			"RECONCILE_INTERVAL": "30m", "RECONCILE_WINDOW": "96h", "RECONCILE_ENDPOINT": "booking"},
			want: reconcile.Settings{SecretKey: key, APIBase: "http://127.0.0.1:12111", MaxNetworkRetries: 2,
				Interval: 30 * time.Minute, Window: 96 * time.Hour, Endpoint: "booking"}},
		{name: "restricted key", needKey: true, env: map[string]string{"STRIPE_SECRET_KEY": "rk_live_abc"},
			want: reconcile.Settings{SecretKey: "rk_live_abc", APIBase: stripeclient.DefaultAPIBase, MaxNetworkRetries: 5,
				Window: 72 * time.Hour, Endpoint: "default"}},
		{name: "publishable key is refused without echoing it", needKey: true,
			env:     map[string]string{"STRIPE_SECRET_KEY": "pk_test_secretish"},
			wantErr: []string{"STRIPE_SECRET_KEY", "pk_…"}},
		{name: "webhook secret is refused", needKey: true, env: map[string]string{"STRIPE_SECRET_KEY": "whsec_abc"},
			wantErr: []string{"STRIPE_SECRET_KEY"}},
		{name: "interval under a minute", env: map[string]string{"STRIPE_SECRET_KEY": key, "RECONCILE_INTERVAL": "10s"},
			wantErr: []string{`config: RECONCILE_INTERVAL="10s": must be 0 (off) or at least 1m`}},
		{name: "malformed key in periodic mode is reported once", env: map[string]string{"STRIPE_SECRET_KEY": "pk_live_x", "RECONCILE_INTERVAL": "1h"},
			wantErr: []string{"config: STRIPE_SECRET_KEY: must be a Stripe secret key"}, wantOne: true},
		{name: "interval longer than window", env: map[string]string{"STRIPE_SECRET_KEY": key, "RECONCILE_INTERVAL": "2h", "RECONCILE_WINDOW": "1h"},
			wantErr: []string{"RECONCILE_INTERVAL", "RECONCILE_WINDOW"}},
		{name: "window beyond Stripe's 30 days", env: map[string]string{"RECONCILE_WINDOW": "800h"},
			wantErr: []string{"RECONCILE_WINDOW"}},
		{name: "api base not a URL", env: map[string]string{"STRIPE_API_BASE": "ftp://x"},
			wantErr: []string{"STRIPE_API_BASE"}},
		{name: "bad endpoint", env: map[string]string{"RECONCILE_ENDPOINT": "Booking.x"},
			wantErr: []string{"RECONCILE_ENDPOINT"}},
		{name: "retries out of range", env: map[string]string{"STRIPE_MAX_NETWORK_RETRIES": "50"},
			wantErr: []string{"STRIPE_MAX_NETWORK_RETRIES"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := config.NewParser(config.MapEnv(tt.env))
			got := processorconfig.ParseReconcile(p, tt.needKey)
			err := p.Err()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.wantOne && strings.Contains(err.Error(), "\n") {
				t.Errorf("want one error, got:\n%v", err)
			}
			if k := tt.env["STRIPE_SECRET_KEY"]; k != "" && strings.Contains(err.Error(), k) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}
