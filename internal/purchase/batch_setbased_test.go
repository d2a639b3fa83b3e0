package purchase_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// A batch of new paid checkouts costs a fixed number of statements on the
// set-based path, whatever its size: BEGIN, content+terms, purchases,
// advisory locks, access facts, access upsert, outbox, checkout_sessions
// mark, stripe_events, the ledger's two (one ledger.PostMany for every
// sale of the batch: the transactions, then the accounts with the entries),
// COMMIT.
func TestSetBasedStatementBudget(t *testing.T) {
	const budget = 12
	for _, n := range []int{2, 16, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnvOn(t, purchase.PathSetBased, purchase.AccessPolicy{})
			log := &statementLog{}
			e.db.AddQueryHook(log)
			cat := e.seedContent()
			var evs []stripeevent.Event
			for i := range n {
				w := newWorld(cat, fmt.Sprintf("b%d", i))
				evs = append(evs, w.checkout(t, "checkout.session.completed", fmt.Sprintf("evt_b%d", i), t0, ""))
			}
			log.record(true)
			res := e.h.HandleBatch(context.Background(), evs)
			got := log.record(false)
			for i, r := range res {
				if r.Err != nil || r.Outcome != handling.Applied {
					t.Fatalf("event %d: %s, %v", i, r.Outcome, r.Err)
				}
			}
			if len(got) != budget {
				t.Errorf("a batch of %d paid checkouts sent %d statements, budget %d:\n%s", n, len(got), budget, strings.Join(got, "\n"))
			}
			checkLedgerLast(t, got)
			if c := e.count("purchases", ""); c != n {
				t.Errorf("purchases = %d, want %d", c, n)
			}
			if c := e.count("ledger_transactions", "cause = 'purchase'"); c != n {
				t.Errorf("sale postings = %d, want %d", c, n)
			}
		})
	}
}

// fixed catalog of the comparison scenarios, the same ids in every database.
var (
	fixedOrg      = uuid.MustParse("00000000-0000-7000-8000-00000000000a")
	fixedContent  = uuid.MustParse("00000000-0000-7000-8000-0000000000c1")
	fixedContent2 = uuid.MustParse("00000000-0000-7000-8000-0000000000c2")
)

func (e *env) seedFixed() (catalog, catalog) {
	e.t.Helper()
	a := catalog{org: fixedOrg, content: fixedContent, creator: "creator_a"}
	b := catalog{org: fixedOrg, content: fixedContent2, creator: "creator_b"}
	for _, c := range []catalog{a, b} {
		e.insert(&model.Content{ID: c.content, CreatorID: c.creator, OrganizationID: c.org, PriceCents: 2999,
			Currency: "usd", Visibility: "public"})
	}
	return a, b
}

// snapshot is every row the handler writes, as text, with generated ids
// replaced by what they stand for (a purchase by its session, a ledger
// account by its name, a ledger transaction by its key), outbox rows
// grouped by purchase in their order: equal snapshots mean identical rows.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var ps []model.Purchase
	if err := e.db.NewSelect().Model(&ps).WhereAllWithDeleted().Order("stripe_checkout_session_id").Scan(ctx); err != nil {
		e.t.Fatal(err)
	}
	name := map[string]string{}
	for _, p := range ps {
		name[p.ID.String()] = "P(" + p.StripeCheckoutSessionID + ")"
	}
	norm := func(s string) string {
		for id, n := range name {
			s = strings.ReplaceAll(s, id, n)
		}
		return s
	}
	var b strings.Builder
	for _, p := range ps {
		p.ID = uuid.Nil
		fmt.Fprintf(&b, "purchase %s\n", jsonText(e.t, p))
	}
	var acc []model.ContentAccess
	if err := e.db.NewSelect().Model(&acc).Order("user_id", "content_id").Scan(ctx); err != nil {
		e.t.Fatal(err)
	}
	for _, a := range acc {
		pid := ""
		if a.PurchaseID != nil {
			pid = a.PurchaseID.String()
		}
		a.PurchaseID, a.ID = nil, uuid.Nil
		fmt.Fprintf(&b, "access %s %s\n", norm(pid), jsonText(e.t, a))
	}
	var evs []model.StripeEvent
	if err := e.db.NewSelect().Model(&evs).Order("event_id").Scan(ctx); err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		pid := ""
		if ev.PurchaseID != nil {
			pid = ev.PurchaseID.String()
		}
		ev.PurchaseID, ev.Payload = nil, nil
		fmt.Fprintf(&b, "event %s %s\n", norm(pid), norm(jsonText(e.t, ev)))
	}
	var obs []model.Outbox
	if err := e.db.NewSelect().Model(&obs).Order("id").Scan(ctx); err != nil {
		e.t.Fatal(err)
	}
	slices.SortStableFunc(obs, func(x, y model.Outbox) int {
		return strings.Compare(name[x.AggregateID.String()], name[y.AggregateID.String()])
	})
	for _, o := range obs {
		var env map[string]any
		if err := json.Unmarshal(o.Payload, &env); err != nil {
			e.t.Fatal(err)
		}
		delete(env, "id")
		payload, _ := json.Marshal(env)
		fmt.Fprintf(&b, "outbox %s %s %s %s\n", o.Subject, o.EventType, name[o.AggregateID.String()], norm(string(payload)))
	}
	e.snapshotLedger(&b, norm)
	return b.String()
}

// snapshotLedger writes the ledger's rows to b: transactions by key, each
// account with its balance and its entries in version order.
func (e *env) snapshotLedger(b *strings.Builder, norm func(string) string) {
	e.t.Helper()
	ctx := context.Background()
	var txs []struct {
		Key         string    `bun:"idempotency_key"`
		Cause       string    `bun:"cause"`
		Amount      int64     `bun:"amount_cents"`
		Reference   *string   `bun:"reference"`
		EffectiveAt time.Time `bun:"effective_at"`
	}
	if err := e.db.NewRaw(`SELECT idempotency_key, cause, amount_cents, reference, effective_at
		FROM ledger_transactions ORDER BY idempotency_key`).Scan(ctx, &txs); err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, t := range txs {
		lines = append(lines, fmt.Sprintf("ledger tx %s %s %d %v %s", norm(t.Key), t.Cause, t.Amount, jsonText(e.t, t.Reference), t.EffectiveAt.UTC()))
	}
	var entries []struct {
		Account string `bun:"account"`
		Key     string `bun:"idempotency_key"`
		Amount  int64  `bun:"amount"`
		After   int64  `bun:"balance_after"`
		Version int64  `bun:"account_version"`
		Balance int64  `bun:"balance"`
	}
	if err := e.db.NewRaw(`SELECT a.owner || '/' || a.currency || '/' || a.kind AS account, t.idempotency_key,
		en.amount, en.balance_after, en.account_version, a.balance
		FROM ledger_entries en JOIN ledger_accounts a ON a.id = en.account_id JOIN ledger_transactions t ON t.id = en.transaction_id
		ORDER BY a.owner, a.currency, a.kind, en.account_version`).Scan(ctx, &entries); err != nil {
		e.t.Fatal(err)
	}
	for _, en := range entries {
		lines = append(lines, fmt.Sprintf("ledger entry %s #%d %s %d → %d (account balance %d)",
			en.Account, en.Version, norm(en.Key), en.Amount, en.After, en.Balance))
	}
	// Purchase ids sort differently on the two paths; their names do not.
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(b, l)
	}
}

// jsonText is v as JSON: pointers are followed, unlike fmt's %+v.
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// resultText is a result as compared across paths: the outcome, or the
// error's code and reason.
func resultText(r handling.Result) string {
	if r.Err != nil {
		return fmt.Sprintf("error %s/%s", fault.CodeOf(r.Err), fault.ReasonOf(r.Err))
	}
	return string(r.Outcome)
}

// The cases the set-based path decides differently from a plain new
// purchase, each run on both paths: the same results and identical rows,
// plus what each case must show.
func TestSetBasedMatchesPerEvent(t *testing.T) {
	paid := func(t *testing.T, w world, id string, at time.Time) stripeevent.Event {
		return w.checkout(t, "checkout.session.completed", id, at, "")
	}
	type scenario struct {
		name  string
		setup func(t *testing.T, e *env, a, b catalog)
		batch func(t *testing.T, a, b catalog) []stripeevent.Event
		want  []string // results, as resultText
		check func(t *testing.T, e *env, a, b catalog)
	}
	scenarios := []scenario{
		{
			name: "same event twice in one batch",
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				x, y := newWorld(a, "x"), newWorld(b, "y")
				return []stripeevent.Event{paid(t, x, "evt_x", t0), paid(t, x, "evt_x", t0), paid(t, y, "evt_y", t0)}
			},
			want: []string{"applied", "duplicate", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				if n := e.count("outbox", ""); n != 2 {
					t.Errorf("outbox rows = %d, want 2", n)
				}
			},
		},
		{
			name: "two event ids of one session",
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				x := newWorld(a, "x")
				return []stripeevent.Event{paid(t, x, "evt_x1", t0), paid(t, x, "evt_x2", t0.Add(time.Minute)), paid(t, newWorld(a, "z"), "evt_z", t0)}
			},
			want: []string{"applied", "duplicate", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				if n := e.count("stripe_events", "outcome = ?", model.EventDuplicate); n != 1 {
					t.Errorf("duplicate rows = %d, want 1", n)
				}
			},
		},
		{
			name: "existing completed and existing pending purchase",
			setup: func(t *testing.T, e *env, a, b catalog) {
				e.mustHandle(paid(t, newWorld(a, "done"), "evt_done", t0), handling.Applied)
				e.mustHandle(newWorld(a, "pend").checkout(t, "checkout.session.completed", "evt_pend", t0, "unpaid"), handling.Applied)
			},
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				return []stripeevent.Event{
					paid(t, newWorld(a, "done"), "evt_done2", t0.Add(time.Minute)),
					newWorld(a, "pend").checkout(t, "checkout.session.async_payment_succeeded", "evt_pend2", t0.Add(time.Hour), ""),
					paid(t, newWorld(a, "pend"), "evt_pend3", t0.Add(2*time.Hour)),
					paid(t, newWorld(b, "new"), "evt_new", t0),
				}
			},
			want: []string{"duplicate", "applied", "duplicate", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				if p := e.purchaseBySession("cs_pend"); p.Status != model.PurchaseCompleted {
					t.Errorf("pending purchase is %s", p.Status)
				}
			},
		},
		{
			name: "access rows of another kind",
			setup: func(t *testing.T, e *env, a, b catalog) {
				past, future := t0.Add(-time.Hour), t0.Add(time.Hour)
				for _, g := range []model.ContentAccess{
					{UserID: "user_comp", AccessType: model.AccessComplimentary, ExpiresAt: &future},
					{UserID: "user_expired", AccessType: model.AccessSubscription, ExpiresAt: &past},
					{UserID: "user_revoked", AccessType: model.AccessPreview, RevokedAt: &past},
				} {
					g.ContentID, g.OrganizationID = a.content, a.org
					g.GrantedAt, g.CreatedAt, g.UpdatedAt = past, past, past
					e.insert(&g)
				}
			},
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				var evs []stripeevent.Event
				for _, u := range []string{"comp", "expired", "revoked"} {
					w := newWorld(a, u)
					evs = append(evs, paid(t, w, "evt_"+u, t0))
				}
				return evs
			},
			want: []string{"applied", "applied", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				if g := e.access("user_comp", a.content); g.AccessType != model.AccessComplimentary || g.PurchaseID != nil {
					t.Errorf("active complimentary grant changed: %+v", g)
				}
				for _, u := range []string{"user_expired", "user_revoked"} {
					if g := e.access(u, a.content); g.AccessType != model.AccessPurchased || g.RevokedAt != nil || g.PurchaseID == nil {
						t.Errorf("%s: access %+v, want the purchase's", u, g)
					}
				}
			},
		},
		{
			name: "several purchases of one (customer, content) in one batch",
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				var evs []stripeevent.Event
				for i := range 3 {
					w := newWorld(a, fmt.Sprint("multi", i))
					w.customer = "user_multi"
					evs = append(evs, paid(t, w, fmt.Sprint("evt_multi", i), t0.Add(time.Duration(i)*time.Minute)))
				}
				return evs
			},
			want: []string{"applied", "applied", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				g := e.access("user_multi", a.content)
				if p := e.purchaseBySession("cs_multi2"); g == nil || g.PurchaseID == nil || *g.PurchaseID != p.ID {
					t.Errorf("access %+v, want the newest purchase %s", g, p.ID)
				}
				if got := metric(t, e.reg, "paystream_content_access_changes_total", map[string]string{"change": "granted"}); got != 1 {
					t.Errorf("access granted counted %v times, want 1", got)
				}
			},
		},
		{
			name: "payment intent reused by another session",
			setup: func(t *testing.T, e *env, a, b catalog) {
				e.mustHandle(paid(t, newWorld(a, "owner"), "evt_owner", t0), handling.Applied)
			},
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				thief, twin, twin2 := newWorld(a, "thief"), newWorld(a, "twin"), newWorld(b, "twin2")
				thief.pi, twin2.pi = "pi_owner", "pi_twin"
				return []stripeevent.Event{paid(t, thief, "evt_thief", t0), paid(t, twin, "evt_twin", t0),
					paid(t, twin2, "evt_twin2", t0), paid(t, newWorld(b, "ok"), "evt_ok", t0)}
			},
			want: []string{"error invalid/payment_intent_conflict", "applied", "error invalid/payment_intent_conflict", "applied"},
		},
		{
			name: "content problems go the per-event way",
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				missing := newWorld(catalog{org: a.org, content: uuid.MustParse("00000000-0000-7000-8000-0000000000ff")}, "missing")
				other := newWorld(catalog{org: uuid.MustParse("00000000-0000-7000-8000-0000000000fe"), content: a.content}, "otherorg")
				return []stripeevent.Event{paid(t, missing, "evt_missing", t0), paid(t, other, "evt_otherorg", t0), paid(t, newWorld(a, "fine"), "evt_fine", t0)}
			},
			want: []string{"error invalid/unknown_content", "error invalid/content_org_mismatch", "applied"},
		},
		{
			name: "a refund before its checkout in the batch, and after",
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				x, y := newWorld(a, "rx"), newWorld(a, "ry")
				full := func(w world, id string) stripeevent.Event {
					return w.refund(t, id, t0.Add(time.Hour), stripefixture.Refund{ID: "re_" + w.session, Amount: w.amount})
				}
				return []stripeevent.Event{full(x, "evt_rx_refund"), paid(t, x, "evt_rx", t0), paid(t, y, "evt_ry", t0), full(y, "evt_ry_refund")}
			},
			want: []string{"error pending/purchase_not_found", "applied", "applied", "applied"},
		},
		{
			name: "a claim already held by another instance",
			setup: func(t *testing.T, e *env, a, b catalog) {
				// Another instance applied evt_taken meanwhile: its claim is
				// there (and in this made-up world, no purchase).
				ev := paid(t, newWorld(a, "taken"), "evt_taken", t0)
				e.insert(&model.StripeEvent{EventID: ev.ID, Type: ev.Type, Endpoint: "default", APIVersion: ev.APIVersion,
					ProcessedAt: t0, Outcome: model.EventApplied, Payload: model.JSON(ev.Payload)})
			},
			batch: func(t *testing.T, a, b catalog) []stripeevent.Event {
				return []stripeevent.Event{paid(t, newWorld(a, "taken"), "evt_taken", t0), paid(t, newWorld(a, "free"), "evt_free", t0)}
			},
			want: []string{"duplicate", "applied"},
			check: func(t *testing.T, e *env, a, b catalog) {
				if n := e.count("purchases", "stripe_checkout_session_id = 'cs_taken'"); n != 0 {
					t.Errorf("the lost claim's purchase was committed")
				}
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			snaps := map[string]string{}
			for _, p := range []struct {
				name string
				path purchase.BatchPath
			}{{"per-event", purchase.PathPerEvent}, {"set-based", purchase.PathSetBased}} {
				t.Run(p.name, func(t *testing.T) {
					e := newEnvOn(t, p.path, purchase.AccessPolicy{})
					a, b := e.seedFixed()
					if sc.setup != nil {
						// Earlier events go through Handle on both paths.
						e.path = purchase.PathPerEvent
						sc.setup(t, e, a, b)
						e.path = p.path
					}
					res := e.h.HandleBatch(context.Background(), sc.batch(t, a, b))
					var got []string
					for _, r := range res {
						got = append(got, resultText(r))
					}
					if !slices.Equal(got, sc.want) {
						t.Errorf("results = %q, want %q", got, sc.want)
					}
					if sc.check != nil {
						sc.check(t, e, a, b)
					}
					snaps[p.name] = e.snapshot()
				})
			}
			if snaps["per-event"] != snaps["set-based"] {
				t.Errorf("rows differ between the paths\nper-event:\n%s\nset-based:\n%s", snaps["per-event"], snaps["set-based"])
			}
		})
	}
}

// Eight instances apply overlapping batches of checkouts over a few shared
// (customer, content) pairs at once, each event delivered to two or three of
// them (redeliveries across instances): every session is applied once, every
// event id recorded once, each pair's access row points at its newest
// purchase, and no batch deadlocks into a failed event.
func TestSetBasedConcurrentBatchesOverSharedPairs(t *testing.T) {
	e := newEnvOn(t, purchase.PathSetBased, purchase.AccessPolicy{})
	a, b := e.seedFixed()
	const sessions = 48
	var evs []stripeevent.Event
	newest := map[string]string{} // pair → newest session
	for i := range sessions {
		cat := []catalog{a, b}[i%2]
		w := newWorld(cat, fmt.Sprint("c", i))
		w.customer = fmt.Sprint("user_", i%3) // 6 pairs, 8 sessions each
		evs = append(evs, w.checkout(t, "checkout.session.completed", fmt.Sprint("evt_c", i), t0.Add(time.Duration(i)*time.Second), ""))
		newest[w.customer+cat.content.String()] = w.session
	}
	const instances = 8
	rng := rand.New(rand.NewPCG(1, 2))
	parts := make([][]stripeevent.Event, instances)
	for i, ev := range evs {
		for k := range 2 + i%2 {
			inst := (i + k*3 + rng.IntN(2)) % instances
			parts[inst] = append(parts[inst], ev)
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes = map[handling.Outcome]int{}
		retries  int
	)
	begin := make(chan struct{})
	for inst := range instances {
		bdb, err := db.Open(context.Background(), e.dsn, db.Options{MaxOpenConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bdb.Close() })
		h, _ := e.newHandler(bdb)
		batch := parts[inst]
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		wg.Go(func() {
			<-begin
			for len(batch) > 0 {
				n := min(8, len(batch))
				part := batch[:n]
				batch = batch[n:]
				for len(part) > 0 {
					var again []stripeevent.Event
					for k, r := range h.HandleBatch(context.Background(), part) {
						if r.Err != nil {
							if fault.ActionOf(r.Err) != fault.Retry {
								t.Errorf("%s: %v", part[k].ID, r.Err)
								continue
							}
							again = append(again, part[k])
							continue
						}
						mu.Lock()
						outcomes[r.Outcome]++
						mu.Unlock()
					}
					mu.Lock()
					retries += len(again)
					mu.Unlock()
					part = again
				}
			}
		})
	}
	close(begin)
	wg.Wait()
	deliveries := 0
	for _, p := range parts {
		deliveries += len(p)
	}
	if outcomes[handling.Applied] != sessions || outcomes[handling.Duplicate] != deliveries-sessions {
		t.Errorf("outcomes = %v for %d deliveries, want %d applied, the rest duplicate", outcomes, deliveries, sessions)
	}
	t.Logf("%d deliveries, %d retried", deliveries, retries)
	for table, want := range map[string]int{"purchases": sessions, "stripe_events": sessions, "outbox": sessions, "content_access": len(newest)} {
		if n := e.count(table, ""); n != want {
			t.Errorf("%s rows = %d, want %d", table, n, want)
		}
	}
	for pair, session := range newest {
		p := e.purchaseBySession(session)
		g := e.access(p.CustomerID, p.ContentID)
		if g == nil || g.PurchaseID == nil || *g.PurchaseID != p.ID || g.RevokedAt != nil {
			t.Errorf("pair %s: access %+v, want the newest purchase %s", pair, g, p.ID)
		}
	}
}
