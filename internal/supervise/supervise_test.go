package supervise

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// stops records the order in which units stop.
type stops struct {
	mu    sync.Mutex
	order []string
}

func (l *stops) add(s string) { l.mu.Lock(); l.order = append(l.order, s); l.mu.Unlock() }
func (l *stops) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.order, ",")
}

// waiter is a unit that stops when told to, after delay, and records it.
func waiter(name string, l *stops, delay time.Duration) Unit {
	return Unit{Name: name, Run: func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(delay)
		l.add(name)
		return ctx.Err()
	}}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestUnitsStopInOrderEachAfterThePrevious(t *testing.T) {
	var l stops
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The first unit takes longest to stop: the later ones must still wait.
	go func() {
		done <- Run(ctx, quiet(), Options{}, waiter("edge", &l, 100*time.Millisecond), waiter("processor", &l, 50*time.Millisecond), waiter("relay", &l, 0))
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if got := l.String(); got != "edge,processor,relay" {
		t.Errorf("stop order = %s, want edge,processor,relay", got)
	}
}

func TestAFailingUnitStopsEveryUnitAndIsReported(t *testing.T) {
	for _, tt := range []struct {
		name string
		ret  error
		want string
	}{
		{"error", errors.New("relay lost its table"), "outbox-relay: relay lost its table"},
		{"nil before shutdown", nil, "outbox-relay: " + ErrStoppedEarly.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var l stops
			broken := Unit{Name: "outbox-relay", Run: func(context.Context) error { return tt.ret }}
			done := make(chan error, 1)
			go func() { done <- Run(context.Background(), quiet(), Options{}, waiter("processor", &l, 0), broken) }()
			select {
			case err := <-done:
				if err == nil || err.Error() != tt.want {
					t.Fatalf("Run = %v, want %q", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a failed unit did not stop the others")
			}
			if got := l.String(); got != "processor" {
				t.Errorf("stopped = %q, want the processor stopped", got)
			}
		})
	}
}

// A unit that outlives its grace is reported while the others keep
// stopping; run with -race, this is the path where dev's own supervisor used
// to append to its error list without the lock.
func TestAUnitPastItsGraceIsReportedAndLeft(t *testing.T) {
	var l stops
	release := make(chan struct{})
	defer close(release)
	stuck := Unit{Name: "edge", Run: func(ctx context.Context) error {
		<-ctx.Done()
		<-release
		return errors.New("late failure")
	}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := Run(ctx, quiet(), Options{Grace: 100 * time.Millisecond}, stuck, waiter("processor", &l, 0))
	if err == nil || !strings.Contains(err.Error(), "edge: did not stop within 100ms") {
		t.Fatalf("Run = %v, want the stuck unit reported", err)
	}
	if l.String() != "processor" {
		t.Errorf("the unit after the stuck one was not stopped")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s; the grace is 100ms", d)
	}
}

// Stopping is called once, before the first unit is told to stop, whether
// the stop comes from ctx or from a failing unit.
func TestStoppingIsCalledBeforeTheFirstUnitStops(t *testing.T) {
	for name, fail := range map[string]bool{"ctx ends": false, "a unit fails": true} {
		t.Run(name, func(t *testing.T) {
			var l stops
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			units := []Unit{waiter("edge", &l, 0), waiter("processor", &l, 0)}
			if fail {
				units = append(units, Unit{Name: "relay", Run: func(context.Context) error { return errors.New("broken") }})
			} else {
				cancel()
			}
			_ = Run(ctx, quiet(), Options{Stopping: func() { l.add("stopping") }}, units...)
			if got := l.String(); got != "stopping,edge,processor" {
				t.Errorf("order = %s, want stopping,edge,processor", got)
			}
		})
	}
}
