package lease

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Every runs round every interval, plus up to 10% random jitter so the
// instances of a group do not line up, until ctx ends; the first round
// starts after one interval. With e set, one instance of the group runs a
// round per interval: the one that takes the lease (held for the interval
// and renewed while the round lasts); the others wait until it expires.
// Without e every instance runs every round. job names the job in the log
// lines.
func Every(ctx context.Context, interval time.Duration, e Elector, log *slog.Logger, job string, round func(ctx context.Context)) {
	wait := interval
	for {
		wait += rand.N(interval/10 + 1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		if e == nil {
			round(ctx)
			continue
		}
		held, retryIn, err := e.Acquire(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("cannot take the "+job+" lease; skipping this round", "error", err)
			}
			continue
		case !held:
			// Another instance ran within the interval: try again when its
			// lease expires, so the group keeps one round per interval. The
			// broker removes an expired key a moment late: never spin.
			log.Debug(job+" lease held by another instance", "retry_in", retryIn.String())
			wait = max(retryIn, interval/10)
			continue
		}
		if err := RunElected(ctx, e, interval, round); err != nil && ctx.Err() == nil {
			log.Warn(job+" lease renewal failed", "error", err)
		}
	}
}
