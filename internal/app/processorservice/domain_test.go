package processorservice_test

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/testenv"
)

func TestDomainCompanions(t *testing.T) {
	bdb, _ := testenv.DB(t)
	js := testenv.StartNATS(t).JetStream(t)
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"relay and sweeper by default", nil, []string{"outbox-relay", "subscription-sweeper"}},
		{"periodic reconcile when enabled", map[string]string{
			"RECONCILE_INTERVAL": "1h", "STRIPE_SECRET_KEY": "sk_test_123",
		}, []string{"outbox-relay", "subscription-sweeper", "periodic-reconcile"}},
		{"payout job when enabled", map[string]string{
			"PAYOUT_INTERVAL": "1h", "STRIPE_SECRET_KEY": "sk_test_123",
		}, []string{"outbox-relay", "subscription-sweeper", "payouts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := processorconfig.Parse(config.MapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			h, comps, err := processorservice.PurchaseDomain(c.Domain)(processorservice.DomainDeps{DB: bdb, JS: js, Reg: prometheus.NewRegistry(),
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil || h == nil {
				t.Fatalf("Domain() = %v, %v", h, err)
			}
			// One route table over the families: the types reconcile
			// recovers are exactly the types the handler routes but the
			// Connect account events, which the platform's Events API does
			// not list.
			recovered := slices.Sorted(slices.Values(append(reconcile.HandledTypes(), payout.ConnectTypes()...)))
			if routed := h.(interface{ Types() []string }).Types(); !slices.Equal(routed, recovered) {
				t.Errorf("handler routes %v, reconcile recovers %v and the Connect endpoint %v", routed, reconcile.HandledTypes(), payout.ConnectTypes())
			}
			var names []string
			for _, c := range comps {
				names = append(names, c.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("companions = %v, want %v", names, tt.want)
			}
		})
	}
}
