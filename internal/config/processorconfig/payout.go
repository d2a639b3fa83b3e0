package processorconfig

import (
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
)

// ParsePayout maps the payout job's variables onto payout.Config and the
// hold onto ledger.Config; the defaults and rules are those packages':
//
//	PAYOUT_INTERVAL           0      periodic payout job in the processor group (1m–24h); 0 = off
//	PAYOUT_HOLD               168h   time after purchased_at before a sale's money is available (0–8784h)
//	PAYOUT_MINIMUM_CENTS      100    smallest balance paid out: "100", or "100,jpy=50,usd=500" per currency
//	PAYOUT_RETRY_BACKOFF      1m     wait before a new idempotency key after Stripe spent one; doubles
//	PAYOUT_MAX_RETRY_BACKOFF  6h     the longest such wait
//	PAYOUT_WORKERS            4      payouts in flight at once in one run (1–64)
//	PAYOUT_RECONCILE_WINDOW   72h    transfers matched with payouts after each periodic run; 0 = off
//	LEDGER_VERIFY_INTERVAL    24h    ledger.Verify in the periodic job; 0 = never
//
// stripeKey is STRIPE_SECRET_KEY as parsed: the periodic job needs it.
func ParsePayout(p *config.Parser, stripeKey string) (payout.Config, ledger.Config) {
	def := payout.DefaultConfig()
	c := payout.Config{
		Minimum:         def.Minimum,
		Interval:        p.Duration("PAYOUT_INTERVAL", 0, 0, payout.MaxInterval),
		RetryBackoff:    p.Duration("PAYOUT_RETRY_BACKOFF", def.RetryBackoff, time.Second, 24*time.Hour),
		MaxRetryBackoff: p.Duration("PAYOUT_MAX_RETRY_BACKOFF", def.MaxRetryBackoff, time.Second, 24*time.Hour),
		Workers:         p.Int("PAYOUT_WORKERS", def.Workers, 1, payout.MaxWorkers),
		VerifyInterval:  p.Duration("LEDGER_VERIFY_INTERVAL", def.VerifyInterval, 0, 30*24*time.Hour),
		ReconcileWindow: p.Duration("PAYOUT_RECONCILE_WINDOW", def.ReconcileWindow, 0, payout.MaxReconcileWindow),
	}
	if v, ok := p.Lookup("PAYOUT_MINIMUM_CENTS"); ok {
		m, err := payout.ParseMinimums(v)
		if err != nil {
			p.Fail("PAYOUT_MINIMUM_CENTS", v, err.Error())
		} else {
			c.Minimum = m
		}
	}
	p.Check(c.Validate())
	p.Check(c.CheckStripeKey(stripeKey))
	l := ledger.Config{Hold: p.Duration("PAYOUT_HOLD", ledger.DefaultHold, 0, ledger.MaxHold)}
	p.Check(l.Validate())
	return c, l
}
