package processorconfig_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
)

func TestParsePayout(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		key     string
		want    func(*payout.Config, *ledger.Config)
		wantErr []string
	}{
		{name: "defaults: off, 168h hold, 100 minimum", env: map[string]string{}},
		{name: "everything set", key: "sk_test_x", env: map[string]string{
			"PAYOUT_INTERVAL": "1h", "PAYOUT_HOLD": "72h", "PAYOUT_MINIMUM_CENTS": "100,jpy=50", "PAYOUT_RETRY_BACKOFF": "30s",
			"PAYOUT_MAX_RETRY_BACKOFF": "2h", "PAYOUT_WORKERS": "8", "PAYOUT_RECONCILE_WINDOW": "96h", "LEDGER_VERIFY_INTERVAL": "0"},
			want: func(c *payout.Config, l *ledger.Config) {
				c.Interval, c.RetryBackoff, c.MaxRetryBackoff, c.Workers = time.Hour, 30*time.Second, 2*time.Hour, 8
				c.ReconcileWindow, c.VerifyInterval = 96*time.Hour, 0
				c.Minimum = payout.Minimums{Default: 100, PerCurrency: map[string]int64{"jpy": 50}}
				l.Hold = 72 * time.Hour
			}},
		{name: "periodic job needs the key", env: map[string]string{"PAYOUT_INTERVAL": "1h"}, wantErr: []string{"STRIPE_SECRET_KEY", "PAYOUT_INTERVAL"}},
		{name: "interval under a minute", key: "sk_test_x", env: map[string]string{"PAYOUT_INTERVAL": "10s"}, wantErr: []string{"PAYOUT_INTERVAL"}},
		{name: "bad minimum", env: map[string]string{"PAYOUT_MINIMUM_CENTS": "0"}, wantErr: []string{`PAYOUT_MINIMUM_CENTS="0"`, "at least 1"}},
		{name: "hold beyond a year", env: map[string]string{"PAYOUT_HOLD": "9000h"}, wantErr: []string{"PAYOUT_HOLD"}},
		{name: "backoff above its max", env: map[string]string{"PAYOUT_RETRY_BACKOFF": "3h", "PAYOUT_MAX_RETRY_BACKOFF": "1h"},
			wantErr: []string{"PAYOUT_MAX_RETRY_BACKOFF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := config.NewParser(config.MapEnv(tt.env))
			c, l := processorconfig.ParsePayout(p, tt.key)
			err := p.Err()
			if tt.wantErr != nil {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wc, wl := payout.DefaultConfig(), ledger.DefaultConfig()
			if tt.want != nil {
				tt.want(&wc, &wl)
			}
			if !reflect.DeepEqual(c, wc) || l != wl {
				t.Errorf("config = %+v %+v\nwant %+v %+v", c, l, wc, wl)
			}
		})
	}
}
