package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/payout/stripefake"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// The payout reads are checked against money that moved the way it moves
// in production: signed Stripe events through the processor's purchase
// family (checkouts, partial and full refunds, disputes opened, won and
// lost), the ledger's postings of those purchases, the hold's release and a
// payout run against the stateful Stripe fake.

// Rates of the world's catalog: organization A has its own platform rate
// and an organization fee with creator A; organization B has neither
// (the default 10 % and 0 %).
const (
	orgAPlatformBps = 1500
	creatorAOrgBps  = 2000
	creatorA        = "creator_1" // the harness's creator, of organization A (h.org)
	creatorB        = "creator_b"
)

// sale is one purchase the world made, and what its events said.
type sale struct {
	org        uuid.UUID
	currency   string
	at         time.Time
	amount     int64
	split      split.Split
	refunded   int64 // the last cumulative amount_refunded sent
	dispute    int64 // the disputed amount sent, 0 when never disputed
	disputeEnd string
	paid       bool // false: a checkout whose payment did not complete
}

// world is a harness with purchases, their ledger, and payouts.
type world struct {
	h       *harness
	handler *purchase.Handler
	fake    *stripefake.Server
	orgB    uuid.UUID
	content map[uuid.UUID]map[string]uuid.UUID // org → currency → content
	sales   []sale
	n       int
}

// newWorld seeds organization B's content, the agreements and an eur item
// of organization A beside the harness's catalog.
func newWorld(t *testing.T, h *harness) *world {
	t.Helper()
	hd, err := purchase.NewHandler(h.db, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), discard())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{h: h, handler: hd, fake: stripefake.New(t), orgB: uuid.New()}
	eurA, usdB := uuid.New(), uuid.New()
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	h.insert(
		&model.Content{ID: eurA, CreatorID: creatorA, OrganizationID: h.org, PriceCents: 900, Currency: "eur", Visibility: "public"},
		&model.Content{ID: usdB, CreatorID: creatorB, OrganizationID: w.orgB, PriceCents: 500, Currency: "usd", Visibility: "public"},
		&model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: h.org, PlatformFeePercentage: orgAPlatformBps, EffectiveFrom: from},
		&model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: creatorA, OrganizationID: h.org, OrganizationFeePercentage: creatorAOrgBps, EffectiveFrom: from},
	)
	w.content = map[uuid.UUID]map[string]uuid.UUID{h.org: {"usd": h.paid, "eur": eurA}, w.orgB: {"usd": usdB}}
	return w
}

// send returns the function that applies one event payload (as a
// stripefixture builder returns it) through the purchase family, as the
// processor does, and fails unless it applied.
func (w *world) send(t *testing.T) func([]byte, error) {
	return func(payload []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			ID, Type string
			Created  int64
		}
		if err := json.Unmarshal(payload, &head); err != nil {
			t.Fatal(err)
		}
		ev := stripeevent.Event{ID: head.ID, Type: head.Type, Endpoint: "default", APIVersion: stripefixture.APIVersion,
			Created: time.Unix(head.Created, 0), Payload: payload, Subject: "stripe.events.default." + head.Type, Deliveries: 1}
		out, err := w.handler.Handle(context.Background(), ev)
		if err != nil || out != handling.Applied {
			t.Fatalf("%s %s: %s, %v", head.Type, head.ID, out, err)
		}
	}
}

// buy completes (or, unpaid, leaves pending) a checkout of org's content
// in currency at at, and returns the sale's index.
func (w *world) buy(t *testing.T, org uuid.UUID, currency string, amount int64, at time.Time, paid bool) int {
	t.Helper()
	w.n++
	id := fmt.Sprintf("w%04d", w.n)
	status := "paid"
	if !paid {
		status = "unpaid"
	}
	content := w.content[org][currency]
	w.send(t)(stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: "evt_buy_" + id, Created: at},
		stripefixture.Checkout{SessionID: "cs_" + id, PaymentIntentID: "pi_" + id, AmountTotal: amount, Currency: currency,
			PaymentStatus: status, Metadata: stripefixture.PurchaseMetadata("buyer_"+id, content.String(), org.String(), amount, currency)}))
	terms := split.Terms{PlatformBps: 1000}
	if org == w.h.org {
		terms = split.Terms{PlatformBps: orgAPlatformBps, OrganizationBps: creatorAOrgBps}
	}
	sp, err := split.Compute(amount, terms)
	if err != nil {
		t.Fatal(err)
	}
	w.sales = append(w.sales, sale{org: org, currency: currency, at: at, amount: amount, split: sp, paid: paid})
	return len(w.sales) - 1
}

// refund sends charge.refunded of sale i with the refunds so far (newest
// first, as Stripe lists them).
func (w *world) refund(t *testing.T, i int, amounts ...int64) {
	t.Helper()
	s := &w.sales[i]
	id := fmt.Sprintf("w%04d", i+1)
	var refunds []stripefixture.Refund
	var cum int64
	for k, a := range amounts {
		refunds = append([]stripefixture.Refund{{ID: fmt.Sprintf("re_%s_%d", id, k), Amount: a}}, refunds...)
		cum += a
	}
	w.send(t)(stripefixture.ChargeRefundedEvent(stripefixture.Meta{EventID: fmt.Sprintf("evt_refund_%s_%d", id, len(amounts)),
		Created: s.at.Add(time.Duration(len(amounts)) * time.Hour)}, stripefixture.Charge{ChargeID: "ch_" + id,
		PaymentIntentID: "pi_" + id, Amount: s.amount, Currency: s.currency, Refunds: refunds}))
	s.refunded = cum
}

// dispute opens a dispute of amount on sale i and, unless end is "",
// closes it won or lost.
func (w *world) dispute(t *testing.T, i int, amount int64, end string) {
	t.Helper()
	s := &w.sales[i]
	id := fmt.Sprintf("w%04d", i+1)
	d := stripefixture.Dispute{DisputeID: "du_" + id, ChargeID: "ch_" + id, PaymentIntentID: "pi_" + id, Amount: amount, Currency: s.currency}
	w.send(t)(stripefixture.DisputeEvent("charge.dispute.created", stripefixture.Meta{EventID: "evt_du_open_" + id, Created: s.at.Add(time.Hour)}, d))
	if end != "" {
		d.Status = end
		w.send(t)(stripefixture.DisputeEvent("charge.dispute.closed", stripefixture.Meta{EventID: "evt_du_close_" + id, Created: s.at.Add(2 * time.Hour)}, d))
	}
	s.dispute, s.disputeEnd = amount, end
}

// randomSales makes n paid usd sales at start + k·step, spread over both
// organizations, each with a random fate: nothing, one or two partial
// refunds, a full refund, or a dispute (of all or part) left open, won or
// lost.
func (w *world) randomSales(t *testing.T, rng *rand.Rand, n int, start time.Time, step time.Duration) {
	t.Helper()
	for k := range n {
		org := w.h.org
		if rng.IntN(3) == 0 {
			org = w.orgB
		}
		amount := 100 + rng.Int64N(20000)
		i := w.buy(t, org, "usd", amount, start.Add(time.Duration(k)*step), true)
		switch rng.IntN(8) {
		case 1:
			w.refund(t, i, 1+rng.Int64N(amount-1))
		case 2:
			first := 1 + rng.Int64N(amount/2)
			w.refund(t, i, first)
			w.refund(t, i, first, 1+rng.Int64N(amount-first))
		case 3:
			w.refund(t, i, amount)
		case 4:
			w.dispute(t, i, amount, "")
		case 5:
			w.dispute(t, i, amount, "won")
		case 6:
			w.dispute(t, i, amount, "lost")
		case 7:
			w.dispute(t, i, 1+rng.Int64N(amount), "lost")
		}
	}
}

// payAll posts the purchases to the ledger (ledger.Backfill, which posts
// only what the processor has not), releases every sale, makes creator A,
// organization A and creator B payees with payouts enabled, and runs a
// payout: one Stripe transfer per payee with an available balance.
func (w *world) payAll(t *testing.T) payout.Summary {
	t.Helper()
	ctx := context.Background()
	if _, err := ledger.Backfill(ctx, w.h.db, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.ReleaseDue(ctx, w.h.db, ledger.Config{Hold: 0}, time.Now().Add(time.Hour), 100000); err != nil {
		t.Fatal(err)
	}
	for i, p := range []model.Payee{{Kind: model.PayeeCreator, ID: creatorA}, {Kind: model.PayeeOrganization, ID: w.h.org.String()},
		{Kind: model.PayeeCreator, ID: creatorB}} {
		acct := fmt.Sprintf("acct_world%d", i)
		w.fake.AddAccount(acct)
		p.StripeAccountID, p.ChargesEnabled, p.PayoutsEnabled, p.RequirementsDue = &acct, true, true, model.JSON("[]")
		w.h.insert(&p)
	}
	st, err := payout.NewStripe(stripeclient.Config{Key: stripefake.Key, APIBase: w.fake.URL}, discard())
	if err != nil {
		t.Fatal(err)
	}
	r, err := payout.NewRunner(w.h.db, st, payout.DefaultConfig(), nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Run(ctx, payout.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := ledger.Verify(ctx, w.h.db); err != nil || d != nil {
		t.Fatalf("ledger verify: %v, %v", d, err)
	}
	return s
}

// reverse reverses amount of the payee's transfer at Stripe and applies
// the transfer.reversed it causes, as the payout family does.
func (w *world) reverse(t *testing.T, payeeID string, amount int64) {
	t.Helper()
	var p model.Payout
	if err := w.h.db.NewSelect().Model(&p).Where("payee_id = ? AND status = 'paid'", payeeID).Limit(1).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr, err := w.fake.Reverse(*p.StripeTransferID, amount)
	if err != nil {
		t.Fatal(err)
	}
	err = w.h.db.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := payout.ApplyTransferReversed(ctx, tx, payout.TransferReversal{TransferID: tr.ID, TransferGroup: tr.TransferGroup,
			AmountReversed: tr.AmountReversed, EventCreated: time.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
