package processorconfig

import (
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/streams"
)

// ParseReconcile maps the environment onto reconcile.Settings, the settings
// of missed-event recovery (the one-shot `paystream reconcile` command and
// the processor's periodic mode); the defaults and rules are reconcile's.
// STRIPE_SECRET_KEY is required when needKey is true (the reconcile command)
// or when the periodic mode is on; otherwise it may stay unset.
func ParseReconcile(p *config.Parser, needKey bool) reconcile.Settings {
	s := reconcile.Settings{
		APIBase:           p.URL("STRIPE_API_BASE", stripeclient.DefaultAPIBase, "https", "http"),
		MaxNetworkRetries: p.Int("STRIPE_MAX_NETWORK_RETRIES", stripeclient.DefaultMaxNetworkRetries, 0, stripeclient.MaxNetworkRetries),
		Interval:          p.Duration("RECONCILE_INTERVAL", 0, 0, reconcile.MaxInterval),
		Window:            p.Duration("RECONCILE_WINDOW", reconcile.DefaultWindow, reconcile.MinWindow, reconcile.MaxWindow),
		Endpoint:          p.String("RECONCILE_ENDPOINT", streams.DefaultEndpoint),
	}
	s.SecretKey, _ = p.StripeSecretKey("STRIPE_SECRET_KEY")
	p.Check(s.Validate(needKey))
	return s
}
