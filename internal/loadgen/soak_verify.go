package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/paystream/paystream/streams"
)

// drain waits until the processor consumer has nothing pending or unacked
// and the outbox is empty, for at most cfg.Drain.
func (s *soak) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Drain)
	defer cancel()
	for {
		pending, outbox, err := s.backlog(ctx)
		s.rep.Backlog, s.rep.OutboxPending = pending, outbox
		if err == nil && pending == 0 && outbox == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("backlog not drained: %d pending, %d outbox rows (last error: %v)", pending, outbox, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *soak) backlog(ctx context.Context) (uint64, int, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := s.nc.js.Consumer(qctx, streams.EventsStream, streams.ProcessorConsumer)
	if err != nil {
		return 1, 0, err
	}
	info, err := cons.Info(qctx)
	if err != nil {
		return 1, 0, err
	}
	outbox, err := s.db.NewSelect().Table("outbox").Where("published_at IS NULL").Count(qctx)
	if err != nil {
		return 1, 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), int(outbox), nil
}

// count compares what the edge accepted with what the database holds.
func (s *soak) count(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.Accepted, s.rep.Sessions = len(s.accepted), len(s.sessions)
	purchases := map[string]int{}
	rows, err := s.db.QueryContext(ctx, `SELECT stripe_checkout_session_id FROM purchases`)
	if err != nil {
		return fmt.Errorf("soak: count purchases: %w", err)
	}
	if err := scanStrings(rows, func(v string) { purchases[v]++; s.rep.Purchases++ }); err != nil {
		return err
	}
	for sess := range s.sessions {
		if purchases[sess] == 0 {
			s.rep.Lost++
		}
	}
	for sess, n := range purchases {
		if n > 1 {
			s.rep.Doubled++
		}
		if !s.sessions[sess] {
			s.rep.Unconfirmed++
		}
	}
	recorded := map[string]bool{}
	rows, err = s.db.QueryContext(ctx, `SELECT event_id FROM stripe_events`)
	if err != nil {
		return fmt.Errorf("soak: count events: %w", err)
	}
	if err := scanStrings(rows, func(v string) { recorded[v] = true }); err != nil {
		return err
	}
	for evt := range s.accepted {
		if !recorded[evt] {
			s.rep.EventsMissing++
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dlq, err := s.nc.js.Stream(qctx, streams.DLQStream)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.DLQStream, err)
	}
	info, err := dlq.Info(qctx)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.DLQStream, err)
	}
	s.rep.DeadLetters = info.State.Msgs
	ev, err := s.nc.js.Stream(qctx, streams.EventsStream)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.EventsStream, err)
	}
	evInfo, err := ev.Info(qctx)
	if err != nil {
		return fmt.Errorf("soak: %s: %w", streams.EventsStream, err)
	}
	s.rep.DedupWindow = evInfo.Config.Duplicates
	return nil
}

func scanStrings(rows *sql.Rows, f func(string)) error {
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		f(v)
	}
	return rows.Err()
}
