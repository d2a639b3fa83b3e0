package eventtx_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// account is the data.object of the toy families' events.
type account struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Bulk   bool   `json:"bulk"` // the set path takes it
	Fail   string `json:"fail"` // the route fails with this fault reason
}

// family is a toy event family: its route records every event as applied
// and counts it after commit; it fails the events that ask for it.
type family struct {
	name    string
	types   []string
	applied atomic.Int64 // after-commit count, route and set path
	set     bool
}

func (f *family) route(_ context.Context, _ bun.Tx, ev eventtx.Event, a *account, rec *eventtx.Record) error {
	if a.Fail != "" {
		return fault.New(fault.Invalid, a.Fail, "event %s asks to fail", ev.ID)
	}
	rec.Recorded("routed by " + f.name)
	rec.AfterCommit(func() { f.applied.Add(1) })
	return nil
}

func (f *family) family() eventtx.Family {
	routes := map[string]eventtx.Route{}
	for _, t := range f.types {
		routes[t] = eventtx.On("account", f.route)
	}
	fam := eventtx.Family{Name: f.name, Routes: routes}
	if f.set {
		fam.Set = setPath{f}
	}
	return fam
}

// setPath takes the family's bulk events and settles them without a
// statement: the lifecycle's claim is what makes them exactly-once.
type setPath struct{ f *family }

func (s setPath) Select(batch []*eventtx.Event) []*eventtx.Event {
	var sel []*eventtx.Event
	for _, ev := range batch {
		if a, ok := ev.Object.(*account); ok && a.Bulk && a.Fail == "" {
			sel = append(sel, ev)
		}
	}
	return sel
}

func (s setPath) Apply(_ context.Context, _ bun.Tx, sel []*eventtx.Event) ([]*eventtx.Record, error) {
	recs := make([]*eventtx.Record, len(sel))
	for i := range sel {
		recs[i] = &eventtx.Record{}
		recs[i].Recorded("set path of " + s.f.name)
		recs[i].AfterCommit(func() { s.f.applied.Add(1) })
	}
	return recs, nil
}

func event(id, typ string, a account) stripeevent.Event {
	obj := fmt.Sprintf(`{"id":%q,"object":"account","bulk":%t,"fail":%q}`, "acct_"+id, a.Bulk, a.Fail)
	return stripeevent.Event{ID: id, Type: typ, Endpoint: "connect", Created: time.Unix(1700000000, 0),
		Payload: []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"data":{"object":%s}}`, id, typ, obj))}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNewRefusesATypeOfTwoFamilies(t *testing.T) {
	bdb, _ := testenv.DB(t)
	a := &family{name: "payouts", types: []string{"account.updated"}}
	b := &family{name: "subscriptions", types: []string{"account.updated"}}
	_, err := eventtx.New(bdb, eventtx.Config{}, discard(), a.family(), b.family())
	if err == nil || !strings.Contains(err.Error(), "account.updated is routed by both payouts and subscriptions") {
		t.Fatalf("New = %v, want the type named with both families", err)
	}
	bad := &family{name: "bad", types: []string{"account.*"}}
	if _, err := eventtx.New(bdb, eventtx.Config{}, discard(), bad.family()); err == nil {
		t.Fatal("New accepted a route for a type that is no Stripe event type")
	}
}

// Two families share one lifecycle, each event going to its family's
// route: every event is claimed once in stripe_events with what its route
// recorded, counted once after commit, and a redelivery is a duplicate; an
// event of no family is ignored, and a failing event fails alone. Per event
// and per batch, with and without a set path.
func TestFamiliesShareTheLifecycle(t *testing.T) {
	for _, path := range []struct {
		name  string
		batch eventtx.BatchPath
	}{{"per-event", eventtx.BatchPerEvent}, {"set-based", eventtx.BatchSetBased}} {
		t.Run(path.name, func(t *testing.T) {
			ctx := context.Background()
			bdb, _ := testenv.DB(t)
			payouts := &family{name: "payouts", types: []string{"account.updated", "account.application.deauthorized"}, set: true}
			subs := &family{name: "subscriptions", types: []string{"customer.subscription.updated"}}
			h, err := eventtx.New(bdb, eventtx.Config{Batch: path.batch}, discard(), payouts.family(), subs.family())
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(h.Types()); got != "[account.application.deauthorized account.updated customer.subscription.updated]" {
				t.Errorf("Types = %s", got)
			}

			// One at a time.
			if out, err := h.Handle(ctx, event("evt_a1", "account.updated", account{})); err != nil || out != handling.Applied {
				t.Fatalf("Handle = %s, %v", out, err)
			}
			if out, err := h.Handle(ctx, event("evt_a1", "account.updated", account{})); err != nil || out != handling.Duplicate {
				t.Fatalf("redelivery = %s, %v; want duplicate", out, err)
			}

			// A batch of both families, a bulk event for the set path, one
			// of no family, one that fails, a copy, and one seen before.
			batch := []stripeevent.Event{
				event("evt_b1", "account.updated", account{Bulk: true}),
				event("evt_b2", "customer.subscription.updated", account{}),
				event("evt_b3", "customer.created", account{}),
				event("evt_b4", "account.application.deauthorized", account{Fail: "deauthorized_unknown"}),
				event("evt_b5", "account.updated", account{Bulk: true}),
				event("evt_b1", "account.updated", account{Bulk: true}),
				event("evt_a1", "account.updated", account{}),
			}
			res := h.HandleBatch(ctx, batch)
			want := []handling.Outcome{handling.Applied, handling.Applied, handling.Ignored, "", handling.Applied, handling.Duplicate, handling.Duplicate}
			for i, r := range res {
				if r.Outcome != want[i] {
					t.Errorf("event %d (%s): %s, %v; want %s", i, batch[i].ID, r.Outcome, r.Err, want[i])
				}
			}
			if fault.ReasonOf(res[3].Err) != "deauthorized_unknown" || fault.CodeOf(res[3].Err) != fault.Invalid {
				t.Errorf("failing event: %v", res[3].Err)
			}
			// The whole batch again, as after a lost ack: nothing applies twice.
			for i, r := range h.HandleBatch(ctx, batch) {
				if i != 2 && i != 3 && r.Outcome != handling.Duplicate {
					t.Errorf("again, event %d (%s): %s, %v; want duplicate", i, batch[i].ID, r.Outcome, r.Err)
				}
			}

			if n := payouts.applied.Load(); n != 3 {
				t.Errorf("payouts counted %d events, want 3 (evt_a1, evt_b1, evt_b5)", n)
			}
			if n := subs.applied.Load(); n != 1 {
				t.Errorf("subscriptions counted %d events, want 1", n)
			}
			var rows []model.StripeEvent
			if err := bdb.NewSelect().Model(&rows).Order("event_id").Scan(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range rows {
				note := ""
				if r.Error != nil {
					note = *r.Error
				}
				got[r.EventID] = r.Outcome + ": " + note
				if r.Endpoint != "connect" || r.StripeCreatedAt == nil || r.StripeCreatedAt.Unix() != 1700000000 {
					t.Errorf("row %s = %+v", r.EventID, r)
				}
			}
			bulk := "recorded: set path of payouts"
			if path.batch == eventtx.BatchPerEvent {
				bulk = "recorded: routed by payouts"
			}
			wantRows := map[string]string{
				"evt_a1": "recorded: routed by payouts", "evt_b1": bulk, "evt_b2": "recorded: routed by subscriptions",
				"evt_b3": "ignored: ", "evt_b5": bulk,
			}
			if fmt.Sprint(got) != fmt.Sprint(wantRows) {
				t.Errorf("stripe_events = %v\nwant %v", got, wantRows)
			}
		})
	}
}

// A payload that is not its event is refused before any transaction, on
// both paths, and its neighbours in a batch go on.
func TestPayloadsAreDecodedOnceAndChecked(t *testing.T) {
	ctx := context.Background()
	bdb, _ := testenv.DB(t)
	f := &family{name: "payouts", types: []string{"account.updated"}}
	h, err := eventtx.New(bdb, eventtx.Config{}, discard(), f.family())
	if err != nil {
		t.Fatal(err)
	}
	other := event("evt_x", "account.updated", account{})
	other.ID = "evt_claimed"
	noObject := stripeevent.Event{ID: "evt_n", Type: "account.updated", Created: time.Unix(1, 0),
		Payload: []byte(`{"id":"evt_n","type":"account.updated"}`)}
	notAnAccount := event("evt_s", "account.updated", account{})
	notAnAccount.Payload = []byte(`{"id":"evt_s","type":"account.updated","data":{"object":{"id":7}}}`)
	for _, ev := range []stripeevent.Event{other, noObject, notAnAccount} {
		if _, err := h.Handle(ctx, ev); fault.ReasonOf(err) != "invalid_payload" {
			t.Errorf("Handle(%s) = %v, want invalid_payload", ev.ID, err)
		}
	}
	res := h.HandleBatch(ctx, []stripeevent.Event{other, event("evt_ok", "account.updated", account{}), noObject})
	if fault.ReasonOf(res[0].Err) != "invalid_payload" || res[1].Err != nil || res[1].Outcome != handling.Applied ||
		fault.ReasonOf(res[2].Err) != "invalid_payload" {
		t.Errorf("batch = %+v", res)
	}
	if n, err := bdb.NewSelect().Model((*model.StripeEvent)(nil)).Count(ctx); err != nil || n != 1 {
		t.Errorf("stripe_events rows = %d, %v; want evt_ok's alone", n, err)
	}
}
