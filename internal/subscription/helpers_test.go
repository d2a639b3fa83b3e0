package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The two payload shapes the fixtures come in.
const (
	shapeOld = "2023-10-16" // period on the subscription; invoice.subscription
	shapeNew = "2025-03-31" // period on the items; invoice.parent.subscription_details
)

var shapes = []string{shapeOld, shapeNew}

// The fixtures' story (testdata/*/): a monthly membership bought at t0.
var (
	t0          = time.Unix(1764547200, 0).UTC() // 2025-12-01T00:00:00Z
	day         = 24 * time.Hour
	p1          = period{t0, t0.Add(31 * day)}
	p2          = period{p1.end, p1.end.Add(31 * day)}
	fixSub      = "sub_1QFixMembership0000001"
	fixCustomer = "user_42"
	orgID       = uuid.MustParse("0b7e9a34-5f21-4c8d-a1e3-6c2d9f4b7a10")
	planA       = uuid.MustParse("7d1c6a52-3c59-4f8e-9f6e-2f1a4b6c8d01") // creator cr_A, grace 3 days
	planOrg     = uuid.MustParse("7d1c6a52-3c59-4f8e-9f6e-2f1a4b6c8d02") // the whole organization, grace 3 days
	otherOrg    = uuid.MustParse("0b7e9a34-5f21-4c8d-a1e3-6c2d9f4b7a11")
	contentA1   = uuid.MustParse("00000000-0000-4000-8000-00000000a001") // cr_A in orgID
	contentA2   = uuid.MustParse("00000000-0000-4000-8000-00000000a002") // cr_A in orgID, deleted
	contentB1   = uuid.MustParse("00000000-0000-4000-8000-00000000b001") // cr_B in orgID
	contentX1   = uuid.MustParse("00000000-0000-4000-8000-00000000c001") // cr_A in otherOrg
	configLow   = uuid.MustParse("00000000-0000-4000-8000-0000000f0001") // 10 % until t0+10d
	configHigh  = uuid.MustParse("00000000-0000-4000-8000-0000000f0002") // 15 % from t0+10d
	agreementA  = uuid.MustParse("00000000-0000-4000-8000-0000000f0003") // cr_A gives orgID 20 %
)

type period struct{ start, end time.Time }

// fixture reads testdata/<shape>/<type>.json as a generic document, so a
// test can change fields in the shape's own places.
func fixture(t testing.TB, shape, typ string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", shape, typ+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/%s: %v", shape, typ, err)
	}
	return m
}

// object is the data.object of a fixture event.
func object(ev map[string]any) map[string]any {
	return ev["data"].(map[string]any)["object"].(map[string]any)
}

// setPeriod writes a subscription's current period where shape keeps it.
func setPeriod(sub map[string]any, shape string, p period) {
	if shape == shapeOld {
		sub["current_period_start"], sub["current_period_end"] = p.start.Unix(), p.end.Unix()
		return
	}
	for _, it := range sub["items"].(map[string]any)["data"].([]any) {
		item := it.(map[string]any)
		item["current_period_start"], item["current_period_end"] = p.start.Unix(), p.end.Unix()
	}
}

// subEdit changes a subscription object.
type subEdit func(sub map[string]any)

func status(s string) subEdit { return func(sub map[string]any) { sub["status"] = s } }

func cancelAtPeriodEnd(v bool) subEdit {
	return func(sub map[string]any) { sub["cancel_at_period_end"] = v }
}

func unixField(k string, t time.Time) subEdit {
	return func(sub map[string]any) { sub[k] = t.Unix() }
}

func noMetadata(sub map[string]any) { sub["metadata"] = map[string]any{} }

// subscriptionBody is the subscription object of the shape's
// customer.subscription.updated fixture, with p and the edits: what Stripe
// would answer a fetch with.
func subscriptionBody(t testing.TB, shape string, p period, edits ...subEdit) []byte {
	t.Helper()
	sub := object(fixture(t, shape, TypeSubscriptionUpdated))
	setPeriod(sub, shape, p)
	for _, e := range edits {
		e(sub)
	}
	b, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadOf is the body of an event of typ from the shape's fixture with id
// and created, its object changed by edit: what Stripe would send.
func payloadOf(t testing.TB, shape, typ, id string, created time.Time, edit func(obj map[string]any)) []byte {
	t.Helper()
	ev := fixture(t, shape, typ)
	ev["id"], ev["created"] = id, created.Unix()
	if edit != nil {
		edit(object(ev))
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// build makes an event of typ from the shape's fixture with id and created,
// its object changed by edit, and decodes it as the processor will.
func build(t testing.TB, shape, typ, id string, created time.Time, edit func(obj map[string]any)) Event {
	t.Helper()
	b := payloadOf(t, shape, typ, id, created, edit)
	out, err := DecodeEvent(b)
	if err != nil {
		t.Fatalf("decode %s %s: %v", typ, id, err)
	}
	return out
}

// subObj edits a subscription object to show p and the edits.
func subObj(shape string, p period, edits ...subEdit) func(map[string]any) {
	return func(sub map[string]any) {
		setPeriod(sub, shape, p)
		for _, e := range edits {
			e(sub)
		}
	}
}

// subEvent is a customer.subscription.* event showing p and the edits.
func subEvent(t testing.TB, shape, typ, id string, created time.Time, p period, edits ...subEdit) Event {
	return build(t, shape, typ, id, created, subObj(shape, p, edits...))
}

// invoiceObj edits an invoice object into invoice invID for period p, paid
// (or attempted) at paidAt; in the 2023-10-16 shape its charge and payment
// intent are ch_<payment> and pi_<payment>. The first period's invoice is
// the signup's, any other a renewal's.
func invoiceObj(shape, invID string, p period, amount int64, paidAt time.Time, payment string) func(map[string]any) {
	return func(inv map[string]any) {
		inv["id"], inv["amount_paid"] = invID, amount
		inv["billing_reason"] = "subscription_cycle"
		if p.start.Equal(t0) {
			inv["billing_reason"] = "subscription_create"
		}
		line := inv["lines"].(map[string]any)["data"].([]any)[0].(map[string]any)
		line["period"] = map[string]any{"start": p.start.Unix(), "end": p.end.Unix()}
		st := inv["status_transitions"].(map[string]any)
		st["paid_at"] = nil
		if !paidAt.IsZero() {
			st["paid_at"] = paidAt.Unix()
		}
		if shape == shapeOld {
			inv["charge"], inv["payment_intent"] = "ch_"+payment, "pi_"+payment
		}
	}
}

// invoiceEvt is an invoice.paid (or .payment_failed) of invoiceObj.
func invoiceEvt(t testing.TB, shape, typ, evID string, created time.Time, invID string, p period, amount int64, paidAt time.Time, payment string) Event {
	return build(t, shape, typ, evID, created, invoiceObj(shape, invID, p, amount, paidAt, payment))
}

// fakeStripe is a Fetcher answering from a table of present states, or
// failing with err.
type fakeStripe struct {
	mu    sync.Mutex
	truth map[string][]byte
	err   error
	calls int
}

func newFakeStripe() *fakeStripe { return &fakeStripe{truth: map[string][]byte{}} }

func (f *fakeStripe) set(id string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truth[id] = body
}

func (f *fakeStripe) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeStripe) FetchSubscription(_ context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.truth[id]
	if !ok {
		return nil, fmt.Errorf("fake stripe: %s: %w", id, ErrNotInStripe)
	}
	return b, nil
}

func (f *fakeStripe) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var _ Fetcher = (*fakeStripe)(nil)

var errStripeDown = errors.New("dial tcp 127.0.0.1:12111: connect: connection refused")

// catalogDB is a migrated database with the fixtures' organization, plans,
// content and fee terms.
func catalogDB(t testing.TB) *bun.DB {
	t.Helper()
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
		  VALUES (?, ?, 'cr_A', 'A monthly', 1000, 'usd', 'month'), (?, ?, NULL, 'All of it', 2500, 'usd', 'month')`,
			[]any{planA, orgID, planOrg, orgID}},
		{`INSERT INTO content (id, creator_id, organization_id, price_cents, currency, deleted_at) VALUES
		  (?, 'cr_A', ?, 500, 'usd', NULL), (?, 'cr_A', ?, 500, 'usd', now()), (?, 'cr_B', ?, 500, 'usd', NULL),
		  (?, 'cr_A', ?, 500, 'usd', NULL)`,
			[]any{contentA1, orgID, contentA2, orgID, contentB1, orgID, contentX1, otherOrg}},
		{`INSERT INTO platform_fee_config (id, platform_fee_percentage, effective_from, effective_until) VALUES
		  (?, 1000, ?, ?), (?, 1500, ?, NULL)`,
			[]any{configLow, t0.AddDate(-1, 0, 0), t0.Add(10 * day), configHigh, t0.Add(10 * day)}},
		{`INSERT INTO creator_organization_agreements (id, creator_id, organization_id, organization_fee_percentage, effective_from)
		  VALUES (?, 'cr_A', ?, 2000, ?)`, []any{agreementA, orgID, t0.AddDate(-1, 0, 0)}},
	}
	for _, s := range stmts {
		if _, err := bdb.NewRaw(s.q, s.args...).Exec(ctx); err != nil {
			t.Fatalf("seed: %v\n%s", err, s.q)
		}
	}
	return bdb
}

// inTx runs f in a transaction that is rolled back, so subtests share one
// database without seeing each other.
func inTx(t testing.TB, bdb *bun.DB, f func(tx bun.Tx)) {
	t.Helper()
	tx, err := bdb.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	f(tx)
}

// mustStore returns a Store over f with a fixed clock.
func mustStore(t testing.TB, f Fetcher) *Store {
	t.Helper()
	s, err := NewStore(f, func() time.Time { return t0.Add(365 * day) })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handle applies ev and fails the test on error.
func handle(t testing.TB, s *Store, idb bun.IDB, ev Event) Outcome {
	t.Helper()
	out, err := s.Handle(context.Background(), idb, ev)
	if err != nil {
		t.Fatalf("handle %s %s: %v", ev.Type, ev.ID, err)
	}
	return out
}

// link sets the metadata contract of a subscription object.
func link(customer string, plan uuid.UUID) subEdit {
	return func(sub map[string]any) {
		sub["metadata"] = map[string]any{MetaCustomerID: customer, MetaPlanID: plan.String(), MetaOrganizationID: orgID.String()}
	}
}

// subID renames a subscription object.
func subID(id string) subEdit { return func(sub map[string]any) { sub["id"] = id } }

// rawEvent decodes an event of typ whose data.object is obj.
func rawEvent(t testing.TB, typ, id string, created time.Time, obj map[string]any) Event {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Decode(id, typ, created.Unix(), false, b)
	if err != nil {
		t.Fatalf("decode %s: %v", id, err)
	}
	return ev
}

// accessAt runs the access check inside tx.
func accessAt(t testing.TB, tx bun.Tx, customer string, content uuid.UUID, now time.Time) Access {
	t.Helper()
	a, err := CheckAccess(context.Background(), tx.Tx, customer, content, now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// loadSub reads subscription id inside tx.
func loadSub(t testing.TB, idb bun.IDB, id string) *model.Subscription {
	t.Helper()
	var s model.Subscription
	if err := idb.NewSelect().Model(&s).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatalf("load subscription %s: %v", id, err)
	}
	return &s
}

func countRows(t testing.TB, idb bun.IDB, table string) int64 {
	t.Helper()
	n, err := idb.NewSelect().Table(table).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
