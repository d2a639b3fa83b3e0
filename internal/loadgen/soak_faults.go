package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Fault kinds the soak injects, in the order it cycles through them.
const (
	FaultPostgres  = "pg_terminate_backend" // the processors' database sessions killed
	FaultBroker    = "broker_restart"       // the nats-server process stopped and started on its store
	FaultProcessor = "processor_sigkill"    // one processor process SIGKILLed and started again
)

// soakAppName is the application_name of the processors' database sessions,
// so a Postgres fault hits them and nothing else on the shared server.
const soakAppName = "paystream-soak-processor"

// faults injects one fault per FaultEvery, cycling through the kinds.
func (s *soak) faults(ctx, tick context.Context) {
	if s.cfg.FaultEvery <= 0 {
		return
	}
	kinds := []string{FaultPostgres, FaultBroker, FaultProcessor}
	t := time.NewTicker(s.cfg.FaultEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-tick.Done():
			return
		case <-t.C:
		}
		// A fault under way completes even if the load ends meanwhile.
		kind := kinds[i%len(kinds)]
		err := s.fault(ctx, kind)
		s.mu.Lock()
		s.rep.Faults[kind]++
		if err != nil {
			s.rep.FaultErrors = append(s.rep.FaultErrors, kind+": "+err.Error())
		}
		s.mu.Unlock()
		s.progressf("  fault %s: %v", kind, errOrOK(err))
	}
}

func errOrOK(err error) any {
	if err == nil {
		return "done"
	}
	return err
}

func (s *soak) fault(ctx context.Context, kind string) error {
	switch kind {
	case FaultPostgres:
		var n int
		err := s.db.NewRaw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = ?`, soakAppName).Scan(ctx, &n)
		if err == nil && n == 0 {
			err = errors.New("no processor session to terminate")
		}
		return err
	case FaultBroker:
		s.broker.stop()
		time.Sleep(time.Second) // clients see the broker gone, not a blip
		return s.broker.start(ctx)
	case FaultProcessor:
		p := s.procs[len(s.procs)-1]
		if err := p.kill(); err != nil {
			return err
		}
		return p.start(ctx)
	}
	return fmt.Errorf("unknown fault %q", kind)
}
