package subscription

import (
	"context"
	"fmt"
	"time"
)

// gaugeEvery is the longest the sweeper lets the active and MRR gauges age:
// their query reads every subscription granting access, so it runs at most
// once a minute however short the sweep interval.
const gaugeEvery = time.Minute

// gauges is what the sweeper last exported, so a label set that no longer
// has subscriptions drops to 0 instead of keeping its last value.
type gauges struct {
	at     time.Time
	active map[[3]string]bool
	mrr    map[string]bool
}

// activeQuery counts the subscriptions granting access at now by plan
// currency, interval and status, with their monthly recurring revenue: the
// plan's list price per month of the active and past_due ones (a trial pays
// nothing yet; Stripe keeps a subscriber on the price it signed up at, so a
// plan whose price changed is counted at its current price).
const activeQuery = `
SELECT p.currency, p.interval, s.status, count(*) AS n,
       coalesce(sum(p.price_cents::float8 / (p.interval_count * CASE p.interval WHEN 'year' THEN 12 ELSE 1 END))
                FILTER (WHERE s.status IN ('active', 'past_due')), 0) AS mrr
FROM subscriptions s JOIN subscription_plans p ON p.id = s.plan_id
WHERE s.access_until > ?
GROUP BY p.currency, p.interval, s.status`

// refreshGauges sets the expiry backlog, and the active and MRR gauges when
// they are older than gaugeEvery.
func (s *Sweeper) refreshGauges(ctx context.Context) error {
	now := s.cfg.Now().UTC()
	var oldest []time.Time
	err := s.db.NewRaw(`SELECT access_until FROM subscriptions
WHERE expired_at IS NULL AND access_until IS NOT NULL AND access_until <= ?
ORDER BY access_until LIMIT 1`, now).Scan(ctx, &oldest)
	if err != nil {
		return fmt.Errorf("read the expiry backlog: %w", err)
	}
	backlog := 0.0
	if len(oldest) > 0 {
		backlog = now.Sub(oldest[0]).Seconds()
	}
	s.m.backlog.Set(backlog)
	if now.Sub(s.gauges.at) < gaugeEvery {
		return nil
	}
	var rows []struct {
		Currency string  `bun:"currency"`
		Interval string  `bun:"interval"`
		Status   string  `bun:"status"`
		N        int64   `bun:"n"`
		MRR      float64 `bun:"mrr"`
	}
	if err := s.db.NewRaw(activeQuery, now).Scan(ctx, &rows); err != nil {
		return fmt.Errorf("count active subscriptions: %w", err)
	}
	active, mrr := map[[3]string]float64{}, map[string]float64{}
	for _, r := range rows {
		active[[3]string{r.Currency, r.Interval, r.Status}] += float64(r.N)
		mrr[r.Currency] += r.MRR
	}
	for k := range s.gauges.active {
		if _, ok := active[k]; !ok {
			active[k] = 0
		}
	}
	for k := range s.gauges.mrr {
		if _, ok := mrr[k]; !ok {
			mrr[k] = 0
		}
	}
	g := gauges{at: now, active: map[[3]string]bool{}, mrr: map[string]bool{}}
	for k, v := range active {
		s.m.active.WithLabelValues(k[0], k[1], k[2]).Set(v)
		g.active[k] = true
	}
	for k, v := range mrr {
		s.m.mrr.WithLabelValues(k).Set(v)
		g.mrr[k] = true
	}
	s.gauges = g
	return nil
}
