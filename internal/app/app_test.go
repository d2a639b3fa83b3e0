package app

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/supervise"
)

// journal records what happened, in order.
type journal struct {
	mu    sync.Mutex
	steps []string
}

func (j *journal) add(s string) { j.mu.Lock(); j.steps = append(j.steps, s); j.mu.Unlock() }
func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.steps, ", ")
}

// fakePart is a service without a broker whose steps land in a journal: a
// store it opens and closes, a check, and two units. onStop runs when the
// first unit is told to stop, while the service is stopping.
type fakePart struct {
	name    string
	j       *journal
	openErr error
	onStop  func()
}

func (p *fakePart) Open(context.Context, Env) (func() error, error) {
	if p.openErr != nil {
		return nil, p.openErr
	}
	p.j.add(p.name + " open")
	return func() error { p.j.add(p.name + " close"); return nil }, nil
}

func (p *fakePart) Build(_ context.Context, env Env) (Parts, error) {
	if env.Registry == nil || env.Log == nil || env.Conn != nil {
		return Parts{}, errors.New("env without a registry or a logger, or with a broker")
	}
	p.j.add(p.name + " build")
	unit := func(name string, onStop func()) supervise.Unit {
		return supervise.Unit{Name: name, Run: func(ctx context.Context) error {
			<-ctx.Done()
			if onStop != nil {
				onStop()
			}
			p.j.add(p.name + " " + name + " stopped")
			return nil
		}}
	}
	return Parts{
		Units:  []supervise.Unit{unit("consumer", p.onStop), unit("relay", nil)},
		Checks: []obs.Check{{Name: "store", Check: func(context.Context) error { return nil }}},
	}, nil
}

// Every service opens, builds and listens in that order, and stops in the
// reverse one: /readyz turns 503 before its units stop, its units stop in
// their order, and its store closes last; the services stop one after the
// other, the API before the edge before the processors, whatever the order
// they were given in.
func TestServicesStartAndStopInOrder(t *testing.T) {
	var j journal
	var r *running
	edge := &fakePart{name: "edge", j: &j}
	edge.onStop = func() {
		code, body := get(t, "http://"+r.addrs.Edge.Admin+"/readyz")
		if code != 503 || !strings.Contains(body, "shutting down") {
			t.Errorf("/readyz while stopping = %d %s, want 503 shutting down", code, body)
		}
		j.add("edge not ready")
	}
	processor := &fakePart{name: "processor", j: &j}
	api := &fakePart{name: "api", j: &j}
	r = start(t,
		Service{Role: RoleProcessor, AdminAddr: "127.0.0.1:0", Part: processor},
		Service{Role: RoleEdge, AdminAddr: "127.0.0.1:0", Part: edge},
		Service{Role: RoleAPI, AdminAddr: "127.0.0.1:0", Part: api},
	)
	if r.addrs.Edge.Admin == "" || r.addrs.API.Admin == "" || len(r.addrs.ProcessorAdmin) != 1 || r.addrs.ProcessorAdmin[0] == "" {
		t.Fatalf("addrs = %+v, want every admin listener", r.addrs)
	}
	for _, a := range []string{r.addrs.API.Admin, r.addrs.Edge.Admin, r.addrs.ProcessorAdmin[0]} {
		if code, body := get(t, "http://"+a+"/readyz"); code != 200 {
			t.Errorf("/readyz of %s = %d %s, want 200", a, code, body)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v after a clean stop", err)
	}
	got := j.String()
	for _, name := range []string{"api", "edge", "processor"} {
		var mine []string
		for _, s := range strings.Split(got, ", ") {
			if strings.HasPrefix(s, name+" ") {
				mine = append(mine, s)
			}
		}
		want := name + " open, " + name + " build, "
		if name == "edge" {
			want += "edge not ready, "
		}
		want += name + " consumer stopped, " + name + " relay stopped, " + name + " close"
		if strings.Join(mine, ", ") != want {
			t.Errorf("%s: %s, want %s", name, strings.Join(mine, ", "), want)
		}
	}
	if i, k, l := strings.Index(got, "api close"), strings.Index(got, "edge consumer stopped"), strings.Index(got, "processor consumer stopped"); i > k || k > l {
		t.Errorf("services stopped in the order %s, want api, edge, processor", got)
	}
}

// A service that cannot open fails Run, naming it, and stops the others.
func TestAServiceThatCannotOpenFailsRun(t *testing.T) {
	var j journal
	a, err := New([]Service{
		{Role: RoleEdge, AdminAddr: "127.0.0.1:0", Part: &fakePart{name: "edge", j: &j}},
		{Role: RoleProcessor, AdminAddr: "127.0.0.1:0", Part: &fakePart{name: "processor", j: &j, openErr: errors.New("schema outdated")}},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "processor: schema outdated") {
		t.Fatalf("Run = %v, want the processor's failure", err)
	}
}

// A busy admin port fails the service with an error naming ADMIN_ADDR, and
// leaves nothing bound.
func TestBusyAdminPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var j journal
	a, err := New([]Service{{Role: RoleAPI, AdminAddr: ln.Addr().String(), Part: &fakePart{name: "api", j: &j}}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "ADMIN_ADDR") {
		t.Fatalf("Run on a busy admin port = %v, want an error naming ADMIN_ADDR", err)
	}
	if got := j.String(); got != "api open, api build, api close" {
		t.Errorf("steps = %s: the store must close after a failed start", got)
	}
}

func TestNewRefusesNothingToRun(t *testing.T) {
	if _, err := New(nil, testLogger(t)); err == nil {
		t.Error("New without services succeeded")
	}
	if _, err := New([]Service{{Role: RoleEdge}}, testLogger(t)); err == nil {
		t.Error("New with a service without a Part succeeded")
	}
	if _, err := New([]Service{{Role: RoleEdge, Part: &fakePart{}}}, nil); err == nil {
		t.Error("New without a logger succeeded")
	}
}
