package processor

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
)

// hold keeps msgs alive with InProgress while the breaker is not closed. It
// returns true once the breaker closed (handle the messages now) and false
// when the instance is stopping (the caller settles them as usual).
func (p *Processor) hold(hctx context.Context, msgs []jetstream.Msg, log *slog.Logger) bool {
	b := p.breaker
	if st, _ := b.watch(); st == BreakerClosed {
		return true
	}
	b.m.held.Add(float64(len(msgs)))
	defer b.m.held.Sub(float64(len(msgs)))
	// How long ago each message last had InProgress is not known here (a
	// batch may have waited in the queue): signal at once, then regularly.
	stop := p.keepAlive(hctx, msgs, time.Time{}, log)
	defer stop()
	return b.awaitClosed(hctx)
}

// maxStoreRounds bounds how often one delivery is held and handled again
// for store errors: an event that itself breaks the connection must not be
// held forever.
const maxStoreRounds = 20

// rehandleWhileStoreDown takes the results of handling evs (delivered as
// msgs) and, as long as some of them failed because the store is down, holds
// those messages until the breaker closes and handles them again with again.
// The retry budget is thus spent only on failures of the events themselves.
func (p *Processor) rehandleWhileStoreDown(hctx context.Context, msgs []jetstream.Msg, evs []stripeevent.Event,
	results []handling.Result, again func([]stripeevent.Event) []handling.Result) []handling.Result {
	if p.breaker == nil {
		return results
	}
	for round := 1; ; round++ {
		var idx []int
		for i, r := range results {
			if p.breaker.suspect(hctx, r.Err) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return results
		}
		if round > maxStoreRounds {
			// The database answers the probe every time and these events
			// still fail as if it were down: they are the problem, not
			// the store. Let the retry budget decide.
			p.log.Warn("events keep failing with store errors while the database answers; retrying them normally",
				"events", len(idx), "rounds", round-1)
			return results
		}
		held := make([]jetstream.Msg, len(idx))
		retry := make([]stripeevent.Event, len(idx))
		for j, i := range idx {
			held[j], retry[j] = msgs[i], evs[i]
		}
		if !p.hold(hctx, held, p.log) {
			return results // stopping: the store errors are settled as retries
		}
		res := again(retry)
		for j, i := range idx {
			results[i] = res[j]
		}
	}
}

// heldMsgs returns the messages of ds.
func heldMsgs(ds []delivery) []jetstream.Msg {
	msgs := make([]jetstream.Msg, len(ds))
	for i, d := range ds {
		msgs[i] = d.msg
	}
	return msgs
}

// rehandleOne is rehandleWhileStoreDown for a single delivery.
func (p *Processor) rehandleOne(hctx context.Context, msg jetstream.Msg, ev stripeevent.Event,
	outcome handling.Outcome, err error) (handling.Outcome, error) {
	r := p.rehandleWhileStoreDown(hctx, []jetstream.Msg{msg}, []stripeevent.Event{ev},
		[]handling.Result{{Outcome: outcome, Err: err}}, func(evs []stripeevent.Event) []handling.Result {
			o, e := p.handle(hctx, evs[0])
			return []handling.Result{{Outcome: o, Err: e}}
		})
	return r[0].Outcome, r[0].Err
}
