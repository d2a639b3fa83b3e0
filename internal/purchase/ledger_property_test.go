package purchase_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// The property at the processor: thousands of random purchases
// (random amounts, currencies, creators, organizations and agreements, some
// paid asynchronously), partial and full refunds, disputes opened, won and
// lost, all delivered in random order with duplicates and second event ids,
// by concurrent instances through Handle/HandleBatch while hold releases
// run beside them (ledger.ReleaseDue). Afterwards ledger.Verify finds
// nothing, and each party's total over all its accounts equals the sum of
// its split shares minus its part (split.Reversal) of what was refunded or
// lost in disputes, to the cent — computed from the generated events alone,
// not from what the processor stored. Both paths end with the same totals.
func TestLedgerPropertyThroughTheProcessor(t *testing.T) {
	n := 800 // per path; 1600 purchases and about 6000 deliveries in all
	if testing.Short() {
		n = 200
	}
	totals := map[string]string{}
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		rng := rand.New(rand.NewPCG(20261207, 19))
		c := seedPropertyCatalog(e, n)
		ps := make([]*propPurchase, n)
		var queue []stripeevent.Event
		for i := range ps {
			ps[i] = c.newPurchase(t, rng, i)
			queue = append(queue, ps[i].events...)
		}
		rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
		// Releases beside the instances: the first half of the purchases
		// is due, each released whenever the releaser meets it.
		regs := e.runInstances(queue, 4, t0.Add(time.Duration(n/2)*time.Second))

		// Releases ran beside the instances; release everything now, so
		// only open disputes hold money outside available.
		for {
			k, err := ledger.ReleaseDue(context.Background(), e.db, ledger.Config{Hold: 0}, t0.Add(365*24*time.Hour), 500)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		e.verifyLedger()

		want := map[ledger.Account]int64{}
		add := func(owner, cur string, v int64) { want[ledger.Account{Owner: owner, Currency: cur}] += v }
		for _, p := range ps {
			row := e.purchaseBySession(p.session)
			if err := p.check(row); err != nil {
				t.Error(err)
				continue
			}
			given, err := split.Reversal(p.split, min(p.amount, p.refunded+p.lost()))
			if err != nil {
				t.Fatal(err)
			}
			kept := p.split.Shares().Sub(given)
			add(ledger.PlatformOwner, p.currency, kept.Platform)
			add(ledger.OrganizationOwner(p.item.org), p.currency, kept.Organization)
			add(ledger.CreatorOwner(p.item.creator), p.currency, kept.Creator)
			add("clearing", p.currency, -kept.Sum())
		}
		got := map[ledger.Account]int64{}
		var accounts []model.LedgerAccount
		if err := e.db.NewSelect().Model(&accounts).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, a := range accounts {
			owner := a.Owner
			switch {
			case a.Kind == string(ledger.StripeClearing):
				owner = "clearing"
			case a.Kind == string(ledger.Pending) && a.Balance != 0:
				t.Errorf("%s/%s/pending = %d after every release", a.Owner, a.Currency, a.Balance)
			}
			got[ledger.Account{Owner: owner, Currency: a.Currency}] += a.Balance
		}
		maps.DeleteFunc(got, func(_ ledger.Account, v int64) bool { return v == 0 })
		maps.DeleteFunc(want, func(_ ledger.Account, v int64) bool { return v == 0 })
		if !maps.Equal(got, want) {
			t.Errorf("party totals\n got %v\nwant %v", got, want)
		}
		totals[t.Name()] = fmt.Sprint(got)

		var sales float64
		for _, reg := range regs {
			sales += metric(t, reg, "paystream_ledger_postings_total", map[string]string{"cause": "purchase"})
		}
		if sales != float64(n) {
			t.Errorf("sale postings counted %v, want %d (each purchase once, whatever was delivered twice)", sales, n)
		}
		var causes []struct {
			Cause string `bun:"cause"`
			N     int    `bun:"n"`
		}
		if err := e.db.NewRaw(`SELECT cause, count(*) AS n FROM ledger_transactions GROUP BY cause ORDER BY cause`).
			Scan(context.Background(), &causes); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d purchases, %d deliveries: ledger transactions %v", n, len(queue), causes)
	})
	if len(totals) == 2 && totals["TestLedgerPropertyThroughTheProcessor/per-event"] != totals["TestLedgerPropertyThroughTheProcessor/set-based"] {
		t.Errorf("the paths end with different totals:\n%v", totals)
	}
}

// propItem is a content item of the property test's catalog.
type propItem struct {
	content, org uuid.UUID
	creator      string
}

// propCatalog is the property test's catalog and the agreements it
// seeded, which the test applies itself to know each purchase's split.
type propCatalog struct {
	items []propItem
	// platformBps and orgBps are the agreements in force from since on
	// (the default rule applies where none is).
	platformBps map[uuid.UUID]propTerm
	orgBps      map[propItem]propTerm
}

type propTerm struct {
	bps   int
	since time.Time
}

// seedPropertyCatalog seeds 3 organizations × 5 creators, with platform
// agreements for two organizations, creator agreements for some pairs, and
// one agreement that starts a third of the way through the purchases.
func seedPropertyCatalog(e *env, n int) *propCatalog {
	e.t.Helper()
	c := &propCatalog{platformBps: map[uuid.UUID]propTerm{}, orgBps: map[propItem]propTerm{}}
	orgs := []uuid.UUID{
		uuid.MustParse("00000000-0000-7000-8000-0000000000a1"),
		uuid.MustParse("00000000-0000-7000-8000-0000000000a2"),
		uuid.MustParse("00000000-0000-7000-8000-0000000000a3"),
	}
	for ci := range 5 {
		for oi, org := range orgs {
			it := propItem{content: uuid.MustParse(fmt.Sprintf("00000000-0000-7000-8000-0000000c%02d%02d", ci, oi)), org: org,
				creator: fmt.Sprintf("cr_%d", ci)}
			c.items = append(c.items, it)
			e.insert(&model.Content{ID: it.content, CreatorID: it.creator, OrganizationID: org, PriceCents: 100,
				Currency: "usd", Visibility: "public"})
		}
	}
	year := t0.Add(-365 * 24 * time.Hour)
	for org, bps := range map[uuid.UUID]int{orgs[0]: 500, orgs[1]: 2000} {
		c.platformBps[org] = propTerm{bps, year}
		e.insert(&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: org, PlatformFeePercentage: bps, EffectiveFrom: year})
	}
	for _, a := range []struct {
		ci, oi, bps int
		since       time.Time
	}{{1, 0, 1500, year}, {2, 1, 3000, year}, {3, 0, 10000, year}, {4, 2, 2500, t0.Add(time.Duration(n/3) * time.Second)}} {
		it := c.items[a.ci*len(orgs)+a.oi]
		c.orgBps[it] = propTerm{a.bps, a.since}
		e.insert(&model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: it.creator, OrganizationID: it.org,
			OrganizationFeePercentage: a.bps, EffectiveFrom: a.since})
	}
	return c
}

// terms returns the terms of it in force at at, by the contract's rule.
func (c *propCatalog) terms(it propItem, at time.Time) split.Terms {
	tm := split.Terms{PlatformBps: split.DefaultPlatformBps}
	if a, ok := c.platformBps[it.org]; ok && !at.Before(a.since) {
		tm.PlatformBps = a.bps
	}
	if a, ok := c.orgBps[it]; ok && !at.Before(a.since) {
		tm.OrganizationBps = a.bps
	}
	return tm
}

// propPurchase is one generated purchase: its events and what they must
// leave behind.
type propPurchase struct {
	item                      propItem
	session, pi, charge, user string
	currency                  string
	amount                    int64
	split                     split.Split // by the catalog's terms at the paying event's time
	refunded                  int64       // the largest cumulative refund delivered, capped at the amount
	dispute                   string      // "", open, won or lost: what the row must say
	disputeAmount             int64
	events                    []stripeevent.Event
}

func (p *propPurchase) lost() int64 {
	if p.dispute == model.DisputeLost {
		return p.disputeAmount
	}
	return 0
}

// newPurchase draws purchase i: a paid checkout (or an unpaid one and its
// async success), up to three cumulative refunds (some of a larger charge),
// a dispute opened and/or closed won or lost; a tenth of the events is
// delivered twice, and some refunds come again under a second event id.
func (c *propCatalog) newPurchase(t *testing.T, rng *rand.Rand, i int) *propPurchase {
	t.Helper()
	name := fmt.Sprintf("prop%05d", i)
	p := &propPurchase{item: c.items[rng.IntN(len(c.items))], session: "cs_" + name, pi: "pi_" + name, charge: "ch_" + name,
		user: "user_" + name, currency: "usd", amount: 1 + rng.Int64N(99_999)}
	if rng.IntN(5) == 0 {
		p.currency = "eur"
	}
	if i%10 == 0 {
		p.amount = rng.Int64N(10) // rounding at its worst, zero included
	}
	base := t0.Add(time.Duration(i) * time.Second)
	paidAt := base
	ck := func(typ, id string, at time.Time, status string) stripeevent.Event {
		b, err := stripefixture.CheckoutEvent(typ, stripefixture.Meta{EventID: id, Created: at}, stripefixture.Checkout{
			SessionID: p.session, PaymentIntentID: p.pi, AmountTotal: p.amount, Currency: p.currency, PaymentStatus: status,
			Metadata: stripefixture.PurchaseMetadata(p.user, p.item.content.String(), p.item.org.String(), p.amount, p.currency)})
		if err != nil {
			t.Fatal(err)
		}
		return toEvent(t, b)
	}
	if rng.IntN(4) == 0 {
		paidAt = base.Add(time.Minute)
		p.events = append(p.events, ck("checkout.session.completed", "evt_c_"+name, base, "unpaid"),
			ck("checkout.session.async_payment_succeeded", "evt_s_"+name, paidAt, ""))
	} else {
		p.events = append(p.events, ck("checkout.session.completed", "evt_c_"+name, base, ""))
	}
	sp, err := split.Compute(p.amount, c.terms(p.item, paidAt))
	if err != nil {
		t.Fatal(err)
	}
	p.split = sp
	if p.amount > 0 {
		for k := range rng.IntN(4) {
			cum := 1 + rng.Int64N(p.amount)
			if rng.IntN(4) == 0 {
				cum = p.amount + rng.Int64N(3) // a full refund, sometimes of a larger charge
			}
			p.refunded = max(p.refunded, min(cum, p.amount))
			b, err := stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: fmt.Sprintf("evt_r%d_%s", k, name), Created: base.Add(2 * time.Minute)},
				stripefixture.Charge{ChargeID: p.charge, PaymentIntentID: p.pi, Amount: max(p.amount, cum), Currency: p.currency,
					Refunds: []stripefixture.Refund{{ID: fmt.Sprintf("re_%s_%d", name, cum), Amount: cum}}})
			if err != nil {
				t.Fatal(err)
			}
			ev := toEvent(t, b)
			p.events = append(p.events, ev)
			if rng.IntN(8) == 0 { // the same change under a second event id
				again := ev
				again.ID = ev.ID + "_again"
				again.Payload = []byte(strings.Replace(string(ev.Payload), `"id":"`+ev.ID+`"`, `"id":"`+again.ID+`"`, 1))
				p.events = append(p.events, again)
			}
		}
	}
	if rng.IntN(3) == 0 {
		p.disputeAmount = p.amount
		if rng.IntN(2) == 0 && p.amount > 0 {
			p.disputeAmount = 1 + rng.Int64N(p.amount)
		}
		du := func(typ, id, status string) stripeevent.Event {
			b, err := stripefixture.DisputeEvent(typ, stripefixture.Meta{EventID: id, Created: base.Add(3 * time.Minute)},
				stripefixture.Dispute{DisputeID: "du_" + name, ChargeID: p.charge, PaymentIntentID: p.pi, Amount: p.disputeAmount,
					Currency: p.currency, Status: status})
			if err != nil {
				t.Fatal(err)
			}
			return toEvent(t, b)
		}
		if rng.IntN(5) > 0 {
			p.dispute = model.DisputeOpen
			p.events = append(p.events, du("charge.dispute.created", "evt_do_"+name, "needs_response"))
		}
		switch rng.IntN(3) {
		case 0:
			p.dispute = model.DisputeWon
			p.events = append(p.events, du("charge.dispute.closed", "evt_dc_"+name, "won"))
		case 1:
			p.dispute = model.DisputeLost
			p.events = append(p.events, du("charge.dispute.closed", "evt_dc_"+name, "lost"))
		}
	}
	for _, ev := range slices.Clone(p.events) {
		if rng.IntN(10) == 0 {
			p.events = append(p.events, ev) // delivered twice
		}
	}
	return p
}

// check compares the purchase's row with what its events must have left.
func (p *propPurchase) check(row model.Purchase) error {
	dispute := ""
	if row.DisputeStatus != nil {
		dispute = *row.DisputeStatus
	}
	if row.PurchasedAt == nil || row.RefundAmountCents != p.refunded || dispute != p.dispute || row.CreatorID != p.item.creator ||
		row.PlatformFeeCents != p.split.Platform || row.OrganizationFeeCents != p.split.Organization || row.CreatorPayoutCents != p.split.Creator {
		return fmt.Errorf("%s: row refunded %d dispute %q creator %q split %d/%d/%d, want %d %q %q %d/%d/%d", p.session,
			row.RefundAmountCents, dispute, row.CreatorID, row.PlatformFeeCents, row.OrganizationFeeCents, row.CreatorPayoutCents,
			p.refunded, p.dispute, p.item.creator, p.split.Platform, p.split.Organization, p.split.Creator)
	}
	return nil
}

// runInstances delivers queue through k instances (handlers on pools of
// their own) that take batches of 1 to 24 events from a shared queue, as
// the consumer group does; an event that must wait (its purchase not paid
// yet) or lost a race goes back to the end of the queue. Releases of
// whatever is due at releaseAt run beside them. It returns each instance's
// metrics registry.
func (e *env) runInstances(queue []stripeevent.Event, k int, releaseAt time.Time) []*prometheus.Registry {
	e.t.Helper()
	var (
		mu       sync.Mutex
		inFlight int
		wg       sync.WaitGroup
		regs     []*prometheus.Registry
	)
	take := func(rng *rand.Rand) ([]stripeevent.Event, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(queue) == 0 {
			return nil, inFlight == 0
		}
		m := min(len(queue), 1+rng.IntN(24))
		part := slices.Clone(queue[:m])
		queue = queue[m:]
		inFlight++
		return part, false
	}
	giveBack := func(again []stripeevent.Event) {
		mu.Lock()
		queue = append(queue, again...)
		inFlight--
		mu.Unlock()
	}
	stop := make(chan struct{})
	released := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				released <- nil
				return
			default:
			}
			if _, err := ledger.ReleaseDue(context.Background(), e.db, ledger.Config{Hold: 0}, releaseAt, 50); err != nil {
				released <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for w := range k {
		bdb, err := db.Open(context.Background(), e.dsn, db.Options{MaxOpenConns: 2})
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { _ = bdb.Close() })
		h, reg := e.newHandler(bdb)
		regs = append(regs, reg)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				part, done := take(rng)
				if done {
					return
				}
				if part == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				var res []handling.Result
				if len(part) == 1 && rng.IntN(2) == 0 {
					out, err := h.Handle(context.Background(), part[0])
					res = []handling.Result{{Outcome: out, Err: err}}
				} else {
					res = h.HandleBatch(context.Background(), part)
				}
				var again []stripeevent.Event
				for i, r := range res {
					switch {
					case r.Err == nil:
					case fault.CodeOf(r.Err) == fault.Pending || fault.CodeOf(r.Err) == fault.Unavailable:
						part[i].Deliveries++
						again = append(again, part[i])
					default:
						e.t.Errorf("%s %s: %v", part[i].Type, part[i].ID, r.Err)
					}
				}
				giveBack(again)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-released; err != nil {
		e.t.Fatal(err)
	}
	return regs
}
