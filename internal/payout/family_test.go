package payout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/eventtx"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The payout family's routes, run as the processor runs them: through the
// eventtx lifecycle beside the purchase family, on each of its two paths.

// connectPaths are the processor's two ways of applying events: one
// transaction per event (Handle), or a batch's transaction with a savepoint
// per event (HandleBatch; a lone event takes it too).
var connectPaths = []struct {
	name  string
	batch bool
}{{"per-event", false}, {"batch", true}}

// connectEnv is an env with the processor's event handler.
type connectEnv struct {
	*env
	h     *eventtx.Handler
	batch bool
}

// forEachConnectPath runs f as a subtest on each path, each with a fresh
// env.
func forEachConnectPath(t *testing.T, f func(t *testing.T, c *connectEnv)) {
	t.Helper()
	for _, p := range connectPaths {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			fam, err := payout.NewFamily(e.metrics, e.log)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := purchase.NewFamily(purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), e.log)
			if err != nil {
				t.Fatal(err)
			}
			cfg := eventtx.Config{}
			if p.batch {
				cfg.Batch = eventtx.BatchSetBasedAlways
			}
			h, err := eventtx.New(e.db, cfg, e.log, pf, fam)
			if err != nil {
				t.Fatal(err)
			}
			f(t, &connectEnv{env: e, h: h, batch: p.batch})
		})
	}
}

// deliver applies evs: one Handle each per event, all in one HandleBatch on
// the batch path.
func (c *connectEnv) deliver(t *testing.T, evs ...stripeevent.Event) []handling.Result {
	t.Helper()
	if c.batch {
		return c.h.HandleBatch(context.Background(), evs)
	}
	out := make([]handling.Result, len(evs))
	for i, ev := range evs {
		out[i].Outcome, out[i].Err = c.h.Handle(context.Background(), ev)
	}
	return out
}

// mustDeliver delivers evs and fails unless each ends with its outcome in
// want (one per event).
func (c *connectEnv) mustDeliver(t *testing.T, want []handling.Outcome, evs ...stripeevent.Event) {
	t.Helper()
	for i, r := range c.deliver(t, evs...) {
		if r.Err != nil || r.Outcome != want[i] {
			t.Fatalf("event %d (%s %s): %s, %v; want %s", i, evs[i].Type, evs[i].ID, r.Outcome, r.Err, want[i])
		}
	}
}

// connectEvent wraps a fixture payload as the runtime delivers it from the
// connect endpoint.
func connectEvent(t *testing.T, payload []byte) stripeevent.Event {
	t.Helper()
	var head struct {
		ID, Type string
		Created  int64
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		t.Fatal(err)
	}
	return stripeevent.Event{ID: head.ID, Type: head.Type, Endpoint: "connect", APIVersion: stripefixture.APIVersion,
		Created: time.Unix(head.Created, 0), Payload: payload, Subject: "stripe.events.connect." + head.Type, Deliveries: 1}
}

// accountUpdated builds account.updated of acct created at.
func accountUpdated(t *testing.T, id string, at time.Time, a stripefixture.Account) stripeevent.Event {
	t.Helper()
	b, err := stripefixture.AccountUpdatedEvent(stripefixture.Meta{EventID: id, Created: at}, a)
	if err != nil {
		t.Fatal(err)
	}
	return connectEvent(t, b)
}

func (c *connectEnv) payeeUpdates(t *testing.T, outcome string) float64 {
	t.Helper()
	return testenv.Metric(t, c.reg, "paystream_payouts_payee_updates_total", map[string]string{"outcome": outcome})
}

// The fixtures write the metadata keys onboarding writes.
func TestConnectFixtureMetadataKeys(t *testing.T) {
	if stripefixture.MetadataPayeeKind != payout.MetadataPayeeKind || stripefixture.MetadataPayeeID != payout.MetadataPayeeID {
		t.Fatalf("stripefixture writes %s/%s, onboarding %s/%s", stripefixture.MetadataPayeeKind, stripefixture.MetadataPayeeID,
			payout.MetadataPayeeKind, payout.MetadataPayeeID)
	}
	if got := fmt.Sprint(payout.HandledTypes()); got != "[account.application.deauthorized account.updated transfer.reversed]" {
		t.Fatalf("HandledTypes = %s", got)
	}
}

// account.updated events in any order, per event or in one batch, leave
// the newest one's state: an older one is a duplicate that changes nothing.
func TestConnectAccountUpdatedOutOfOrder(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		acct := c.payee(t, "alice")
		t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
		newer := accountUpdated(t, "evt_newer", t0.Add(2*time.Minute), stripefixture.Account{ID: acct, ChargesEnabled: true,
			CurrentlyDue: []string{"external_account"}, DisabledReason: "requirements.past_due"})
		older := accountUpdated(t, "evt_older", t0.Add(time.Minute), stripefixture.Account{ID: acct, ChargesEnabled: true, PayoutsEnabled: true})
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Duplicate}, newer, older)
		p := c.payeeRow(t, "alice")
		if p.PayoutsEnabled || string(p.RequirementsDue) != `["external_account"]` || deref(p.DisabledReason) != "requirements.past_due" ||
			!p.AccountEventCreated.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("the older event overwrote the newer: %+v (%s)", p, p.RequirementsDue)
		}
		// Redelivered, both are duplicates: the event ids are taken.
		c.mustDeliver(t, []handling.Outcome{handling.Duplicate, handling.Duplicate}, older, newer)
		// Newest in the same batch as an older one, the older listed last.
		newest := accountUpdated(t, "evt_newest", t0.Add(3*time.Minute), stripefixture.Account{ID: acct, ChargesEnabled: true, PayoutsEnabled: true})
		oldest := accountUpdated(t, "evt_oldest", t0, stripefixture.Account{ID: acct})
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Duplicate}, newest, oldest)
		p = c.payeeRow(t, "alice")
		if !p.PayoutsEnabled || !p.ChargesEnabled || string(p.RequirementsDue) != `[]` || p.DisabledReason != nil ||
			!p.AccountEventCreated.Equal(t0.Add(3*time.Minute)) {
			t.Fatalf("not the newest state: %+v (%s)", p, p.RequirementsDue)
		}
		if n := c.outboxCount(t, payout.PayeeUpdatedSubject); n != 2 {
			t.Errorf("%d payees.updated events, want 2 (one per applied event)", n)
		}
		if a, s := c.payeeUpdates(t, "applied"), c.payeeUpdates(t, "stale"); a != 2 || s != 2 {
			t.Errorf("payee updates: applied %v, stale %v; want 2, 2", a, s)
		}
		var rows []model.StripeEvent
		if err := c.db.NewSelect().Model(&rows).Order("event_id").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			want := model.EventApplied
			if r.EventID == "evt_older" || r.EventID == "evt_oldest" {
				want = model.EventDuplicate
			}
			if r.Outcome != want || r.Endpoint != "connect" || r.Type != payout.TypeAccountUpdated {
				t.Errorf("stripe_events %s: %s %s %s, want %s on connect", r.EventID, r.Type, r.Endpoint, r.Outcome, want)
			}
		}
	})
}

// An account.updated that overtook onboarding's commit attaches the account
// to the payee its metadata names; an account that names no payee is
// recorded and changes nothing.
func TestConnectAccountUpdatedAttachesOrIgnores(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		at := time.Now().Add(-time.Minute)
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Applied},
			accountUpdated(t, "evt_meta", at, stripefixture.Account{ID: "acct_zed", PayoutsEnabled: true, PayeeKind: "creator", PayeeID: "zed"}),
			accountUpdated(t, "evt_foreign", at, stripefixture.Account{ID: "acct_foreign", PayoutsEnabled: true}))
		if p := c.payeeRow(t, "zed"); deref(p.StripeAccountID) != "acct_zed" || !p.PayoutsEnabled {
			t.Fatalf("payee zed = %+v", p)
		}
		var ev model.StripeEvent
		if err := c.db.NewSelect().Model(&ev).Where("event_id = 'evt_foreign'").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ev.Outcome != model.EventRecorded || c.count(t, "payees") != 1 {
			t.Fatalf("foreign account: outcome %s, %d payees", ev.Outcome, c.count(t, "payees"))
		}
		if v := c.payeeUpdates(t, "unknown_account"); v != 1 {
			t.Errorf("unknown_account = %v", v)
		}
	})
}

// A deauthorized account's payee is never paid: it accrues, the run pays
// nothing, an account.updated created before the deauthorization (however
// late it arrives) changes nothing, and only one created after it makes
// the payee eligible again.
func TestConnectDeauthorizedPayeeIsNeverPaid(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		acct := c.payee(t, "alice")
		c.earn(t, "alice", 700)
		deauthAt := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
		b, err := stripefixture.DeauthorizedEvent(stripefixture.Meta{EventID: "evt_deauth", Created: deauthAt}, acct)
		if err != nil {
			t.Fatal(err)
		}
		before := accountUpdated(t, "evt_before", deauthAt.Add(-time.Second), stripefixture.Account{ID: acct, ChargesEnabled: true, PayoutsEnabled: true})
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Duplicate}, connectEvent(t, b), before)
		p := c.payeeRow(t, "alice")
		if p.PayoutsEnabled || deref(p.PayoutsBlockedReason) != payout.CodeDeauthorized {
			t.Fatalf("payee after deauthorization: %+v", p)
		}
		r := c.runner(t, nil)
		for range 2 {
			c.earn(t, "alice", 300)
			if s := c.run(t, r); s.Created != 0 || s.Paid != 0 {
				t.Fatalf("a deauthorized payee was paid: %+v", s)
			}
		}
		if got := c.balance(t, "alice", ledger.Available); got != 1300 || len(c.fake.Transfers()) != 0 {
			t.Fatalf("available %d, %d transfers; want 1300 accrued, none sent", got, len(c.fake.Transfers()))
		}
		// The account reconnected: Stripe's account.updated after it.
		c.mustDeliver(t, []handling.Outcome{handling.Applied},
			accountUpdated(t, "evt_after", deauthAt.Add(time.Second), stripefixture.Account{ID: acct, ChargesEnabled: true, PayoutsEnabled: true}))
		if s := c.run(t, r); s.Paid != 1 || s.PaidCents["usd"] != 1300 {
			t.Fatalf("after the account changed: %+v", s)
		}
		c.mustVerify(t)
	})
}

// transfer.reversed credits a payout's reversed amount back once, per event
// and in batches; a redelivery and a second event with the same cumulative
// amount change nothing; a reversal before the payout settled is retried,
// and one of a transfer the payout does not record is dead-lettered.
func TestConnectTransferReversed(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		acct := c.payee(t, "alice")
		c.earn(t, "alice", 1000)
		c.run(t, c.runner(t, nil))
		p := c.payoutOf(t, "alice")
		reversed := func(id string, reversals ...int64) stripeevent.Event {
			tr := stripefixture.Transfer{ID: *p.StripeTransferID, Amount: p.AmountCents, Destination: acct, TransferGroup: p.TransferGroup}
			for _, a := range reversals {
				tr.Reversals = append(tr.Reversals, stripefixture.TransferReversal{Amount: a})
			}
			b, err := stripefixture.TransferReversedEvent(stripefixture.Meta{EventID: id, Created: time.Now()}, tr)
			if err != nil {
				t.Fatal(err)
			}
			ev := connectEvent(t, b)
			ev.Endpoint, ev.Subject = "default", "stripe.events.default."+ev.Type
			return ev
		}
		first, again := reversed("evt_rev_1", 300), reversed("evt_rev_1b", 300)
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Duplicate}, first, again)
		c.mustDeliver(t, []handling.Outcome{handling.Duplicate}, first)
		if got := c.balance(t, "alice", ledger.Available); got != 300 {
			t.Fatalf("available %d after reversing 300", got)
		}
		c.mustDeliver(t, []handling.Outcome{handling.Applied}, reversed("evt_rev_2", 300, 700))
		if got, paid := c.balance(t, "alice", ledger.Available), c.balance(t, "alice", ledger.PaidOut); got != 1000 || paid != 0 {
			t.Fatalf("available %d, paid_out %d after reversing all", got, paid)
		}
		if n := c.outboxCount(t, "payouts.reversed"); n != 2 {
			t.Errorf("%d payouts.reversed events, want 2", n)
		}
		if v, noop := c.payeeUpdates(t, "reversal"), c.payeeUpdates(t, "reversal_already_posted"); v != 2 || noop != 1 {
			t.Errorf("reversal metrics %v, %v; want 2, 1 (the redelivered id is a duplicate before the route)", v, noop)
		}
		c.mustVerify(t)

		// A transfer in the payout's group that the payout does not record.
		dup := stripefixture.Transfer{ID: "tr_duplicate", Amount: p.AmountCents, Destination: acct, TransferGroup: p.TransferGroup,
			Reversals: []stripefixture.TransferReversal{{Amount: 10}}}
		b, err := stripefixture.TransferReversedEvent(stripefixture.Meta{EventID: "evt_rev_dup"}, dup)
		if err != nil {
			t.Fatal(err)
		}
		res := c.deliver(t, connectEvent(t, b))[0]
		if fault.CodeOf(res.Err) != fault.Invalid || fault.ReasonOf(res.Err) != "unrecorded_transfer" {
			t.Fatalf("unrecorded transfer: %s, %v; want a dead letter", res.Outcome, res.Err)
		}
	})
}

// A reversal that arrives while the payout's run is between Stripe's answer
// and its commit is retried (fault.Pending), and applies once settled.
func TestConnectTransferReversedBeforeTheSettlementIsRetried(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		c.payee(t, "alice")
		c.earn(t, "alice", 1000)
		if _, err := c.runner(t, nil, payout.WithFault(stopAt(payout.StepAfterAnswer))).Run(context.Background(), payout.RunOptions{}); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		p := c.payoutOf(t, "alice")
		tr := c.fake.Transfers()[0]
		b, err := stripefixture.TransferReversedEvent(stripefixture.Meta{EventID: "evt_early"}, stripefixture.Transfer{ID: tr.ID,
			Amount: tr.Amount, Destination: tr.Destination, TransferGroup: p.TransferGroup, Reversals: []stripefixture.TransferReversal{{Amount: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		ev := connectEvent(t, b)
		res := c.deliver(t, ev)[0]
		if fault.CodeOf(res.Err) != fault.Pending || fault.ReasonOf(res.Err) != "payout_not_settled" {
			t.Fatalf("early reversal: %s, %v; want a retry", res.Outcome, res.Err)
		}
		c.run(t, c.runner(t, nil)) // the next run settles with the same key
		c.mustDeliver(t, []handling.Outcome{handling.Applied}, ev)
		if got := c.balance(t, "alice", ledger.Available); got != 100 {
			t.Fatalf("available %d", got)
		}
		c.mustVerify(t)
	})
}

// Connect payloads that can never apply are dead-lettered at once
// (invalid_payload), without a transaction's effect; a deauthorization
// without an account (the platform's own) is recorded.
func TestConnectInvalidPayloads(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		acct := c.payee(t, "alice")
		at := time.Now().Add(-time.Minute)
		mismatch := accountUpdated(t, "evt_mismatch", at, stripefixture.Account{ID: acct})
		mismatch.Payload = []byte(replaceOnce(t, string(mismatch.Payload), `"account":"`+acct+`"`, `"account":"acct_other"`))
		notAccount := accountUpdated(t, "evt_not_acct", at, stripefixture.Account{ID: "cus_123"})
		nul := accountUpdated(t, "evt_nul", at, stripefixture.Account{ID: acct, PayeeKind: "creator", PayeeID: "al\x00ice"})
		badDue := accountUpdated(t, "evt_due", at, stripefixture.Account{ID: acct, CurrentlyDue: []string{"a\u202eb"}})
		deauth, err := stripefixture.DeauthorizedEvent(stripefixture.Meta{EventID: "evt_deauth_bad", Created: at}, "acct_x'y")
		if err != nil {
			t.Fatal(err)
		}
		bad := []stripeevent.Event{mismatch, notAccount, nul, badDue, connectEvent(t, deauth)}
		for i, r := range c.deliver(t, bad...) {
			if fault.CodeOf(r.Err) != fault.Invalid || fault.ReasonOf(r.Err) != "invalid_payload" {
				t.Errorf("%s: %s, %v; want invalid_payload", bad[i].ID, r.Outcome, r.Err)
			}
		}
		p := c.payeeRow(t, "alice")
		if p.AccountEventCreated != nil || p.PayoutsBlockedAt != nil || c.count(t, "stripe_events") != 0 {
			t.Fatalf("an invalid event changed something: %+v, %d stripe_events", p, c.count(t, "stripe_events"))
		}
		platform, err := stripefixture.DeauthorizedEvent(stripefixture.Meta{EventID: "evt_platform", Created: at}, "acct_placeholder")
		if err != nil {
			t.Fatal(err)
		}
		ev := connectEvent(t, []byte(replaceOnce(t, string(platform), `"account":"acct_placeholder",`, ``)))
		c.mustDeliver(t, []handling.Outcome{handling.Applied}, ev)
		var row model.StripeEvent
		if err := c.db.NewSelect().Model(&row).Where("event_id = 'evt_platform'").Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if row.Outcome != model.EventRecorded {
			t.Errorf("the platform's own deauthorization: %s", row.Outcome)
		}
	})
}

// Connect events and purchase events share a batch: the purchase family's
// set path takes the checkouts, the payout routes run in their savepoints,
// and each event's result is its own.
func TestConnectBatchBesidePurchases(t *testing.T) {
	forEachConnectPath(t, func(t *testing.T, c *connectEnv) {
		acct := c.payee(t, "alice")
		content := c.contentOf(t, "alice")
		var evs []stripeevent.Event
		for i := range 3 {
			b, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: fmt.Sprintf("evt_buy_%d", i)},
				stripefixture.Checkout{SessionID: fmt.Sprintf("cs_batch_%d", i), AmountTotal: 100, Currency: "usd",
					Metadata: stripefixture.PurchaseMetadata(fmt.Sprintf("u%d", i), content.String(), c.org.String(), 100, "usd")})
			if err != nil {
				t.Fatal(err)
			}
			ev := connectEvent(t, b)
			ev.Endpoint = "default"
			evs = append(evs, ev)
		}
		evs = append(evs[:1], append([]stripeevent.Event{
			accountUpdated(t, "evt_acct", time.Now().Add(-time.Minute), stripefixture.Account{ID: acct, PayoutsEnabled: true, ChargesEnabled: true}),
		}, evs[1:]...)...)
		c.mustDeliver(t, []handling.Outcome{handling.Applied, handling.Applied, handling.Applied, handling.Applied}, evs...)
		if n := c.count(t, "purchases"); n != 3 {
			t.Fatalf("%d purchases", n)
		}
		if p := c.payeeRow(t, "alice"); !p.ChargesEnabled {
			t.Fatalf("payee %+v", p)
		}
	})
}

func (e *env) count(t *testing.T, table string) int {
	t.Helper()
	n, err := e.db.NewSelect().Table(table).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in %s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}
