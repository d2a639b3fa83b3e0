// Package supervise runs the long-lived parts of a paystream program and
// stops them in a fixed order. It is the one supervisor: internal/app runs
// the services (purchase API, edge, processor instances) under it, and each
// service's parts (its public listener, a processor's consumer and
// companions, its admin listener).
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Unit is one long-running part. Run must return soon after its ctx ends; a
// unit that returns before shutdown has failed, whatever it returns.
type Unit struct {
	Name string
	Run  func(ctx context.Context) error
}

// ErrStoppedEarly is the failure of a unit that returned nil before shutdown.
var ErrStoppedEarly = errors.New("returned before shutdown")

// Options shape Run. The zero value waits for every unit without limit.
type Options struct {
	// Grace bounds the wait for each unit once it is told to stop; 0 waits
	// as long as it takes. A unit still running after Grace is reported and
	// left behind so the program can exit.
	Grace time.Duration
	// Stopping, if set, is called once when the stop begins (ctx ended or
	// a unit failed), before the first unit is told to stop: a readiness
	// check turns it into 503 while the units wind down.
	Stopping func()
}

// Run starts every unit, each with its own context, and waits until ctx ends
// or a unit returns. It then stops the units one at a time in the order
// given, each only after the one before it has returned: list the intake
// first (edge, consumer) and what flushes its work last (outbox relay).
// The result joins every unit's failure, each prefixed with its name; a
// unit's context.Canceled after being told to stop is not a failure.
func Run(ctx context.Context, log *slog.Logger, o Options, units ...Unit) error {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var (
		mu       sync.Mutex
		errs     []error
		stopping bool
	)
	record := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	failed := make(chan struct{}, len(units))
	rs := make([]running, len(units))
	for i, u := range units {
		// A unit's context is cut from ctx's cancellation: it ends only
		// when its turn to stop comes, so the order holds.
		uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rs[i] = running{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(rs[i].done)
			err := u.Run(uctx)
			mu.Lock()
			early := !stopping && uctx.Err() == nil
			mu.Unlock()
			switch {
			case early:
				if err == nil {
					err = ErrStoppedEarly
				}
				log.Error("unit failed; shutting down", "unit", u.Name, "error", err)
				record(fmt.Errorf("%s: %w", u.Name, err))
				failed <- struct{}{}
			case err != nil && !errors.Is(err, context.Canceled):
				record(fmt.Errorf("%s: %w", u.Name, err))
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	mu.Lock()
	stopping = true
	mu.Unlock()
	if o.Stopping != nil {
		o.Stopping()
	}
	for i, u := range units {
		rs[i].cancel()
		if !wait(rs[i].done, o.Grace) {
			log.Error("unit did not stop in time; leaving it", "unit", u.Name, "grace", o.Grace.String())
			record(fmt.Errorf("%s: did not stop within %s", u.Name, o.Grace))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}

// wait waits for done, at most grace (0: without limit), and reports
// whether done closed.
func wait(done <-chan struct{}, grace time.Duration) bool {
	if grace <= 0 {
		<-done
		return true
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
