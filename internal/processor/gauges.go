package processor

import (
	"context"
	"time"

	"github.com/paystream/paystream/streams"
)

// pollGauges refreshes the consumer and DLQ gauges from the broker.
func (p *Processor) pollGauges(ctx context.Context) {
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	for {
		p.refreshGauges(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Processor) refreshGauges(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PollInterval)
	defer cancel()
	// js.Consumer fetches the consumer info; one API call per poll.
	cons, err := p.js.Consumer(ctx, streams.EventsStream, streams.ProcessorConsumer)
	if err == nil {
		info := cons.CachedInfo()
		p.m.pending.Set(float64(info.NumPending))
		p.m.ackPending.Set(float64(info.NumAckPending))
		p.m.redelivered.Set(float64(info.NumRedelivered))
	}
	if err != nil && ctx.Err() == nil {
		p.log.Debug("consumer info unavailable", "error", err)
	}
	depth, err := streams.NewDLQ(p.js).Depth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Debug("DLQ depth unavailable", "error", err)
		}
		return
	}
	p.m.dlqMessages.Set(float64(depth))
}
