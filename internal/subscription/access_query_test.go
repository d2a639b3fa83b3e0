package subscription

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// A creator's plan grants that creator's live content in its organization
// and nothing else; an organization plan grants all of the organization's.
func TestPlanGrantsOnlyItsScope(t *testing.T) {
	bdb := catalogDB(t)
	s := mustStore(t, newFakeStripe())
	now := t0.Add(day)
	inTx(t, bdb, func(tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_a", t0, p1, status(model.SubscriptionActive)))
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_o", t0, p1, status(model.SubscriptionActive),
			subID("sub_org"), link("user_43", planOrg)))
		tests := []struct {
			customer string
			content  uuid.UUID
			want     bool
		}{
			{fixCustomer, contentA1, true},  // creator A's plan, A's content
			{fixCustomer, contentB1, false}, // creator B's content in the same organization
			{fixCustomer, contentA2, false}, // A's content, deleted
			{fixCustomer, contentX1, false}, // A's content in another organization
			{"user_43", contentA1, true},    // the organization plan
			{"user_43", contentB1, true},
			{"user_43", contentA2, false},
			{"user_43", contentX1, false},
			{"user_44", contentA1, false}, // no subscription
		}
		for _, tt := range tests {
			a := accessAt(t, tx, tt.customer, tt.content, now)
			if a.Active != tt.want || a.Found != tt.want {
				t.Errorf("%s → %s: %+v, want access %v", tt.customer, tt.content, a, tt.want)
				continue
			}
			if tt.want && (a.Type != model.AccessSubscription || a.Subscription == nil || !a.ExpiresAt.Equal(p1.end) ||
				!a.Since.Equal(t0)) {
				t.Errorf("%s → %s: %+v", tt.customer, tt.content, a)
			}
		}
	})
}

// A purchase wins over a subscription, and so does a complimentary grant; a
// subscription wins over a preview; an ended grant is reported when nothing
// else holds; of two subscriptions, the one that lasts longer answers.
func TestAccessPrecedence(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	s := mustStore(t, newFakeStripe())
	now := t0.Add(day)
	grant := func(t *testing.T, tx bun.Tx, typ string, revoked bool) *uuid.UUID {
		t.Helper()
		var pid *uuid.UUID
		if typ == model.AccessPurchased {
			id := uuid.New()
			pid = &id
			if _, err := tx.NewRaw(`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
				platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
				stripe_checkout_session_id, status, purchased_at) VALUES (?, ?, ?, ?, 500, 'usd', 50, 0, 450, 1000, 0, ?, 'completed', ?)`,
				id, fixCustomer, contentA1, orgID, "cs_"+id.String(), t0).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var revokedAt *time.Time
		if revoked {
			revokedAt = &t0
		}
		row := &model.ContentAccess{UserID: fixCustomer, ContentID: contentA1, OrganizationID: orgID, AccessType: typ,
			PurchaseID: pid, GrantedAt: t0, RevokedAt: revokedAt}
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	subscribe := func(t *testing.T, tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_a", t0, p1, status(model.SubscriptionActive)))
	}
	t.Run("purchase wins", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			subscribe(t, tx)
			pid := grant(t, tx, model.AccessPurchased, false)
			a := accessAt(t, tx, fixCustomer, contentA1, now)
			if !a.Active || a.Type != model.AccessPurchased || *a.PurchaseID != *pid || *a.PurchaseStatus != "completed" || a.Subscription != nil {
				t.Errorf("%+v", a)
			}
		})
	})
	t.Run("complimentary wins", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			subscribe(t, tx)
			grant(t, tx, model.AccessComplimentary, false)
			if a := accessAt(t, tx, fixCustomer, contentA1, now); a.Type != model.AccessComplimentary || !a.Active {
				t.Errorf("%+v", a)
			}
		})
	})
	t.Run("subscription beats a preview", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			subscribe(t, tx)
			grant(t, tx, model.AccessPreview, false)
			if a := accessAt(t, tx, fixCustomer, contentA1, now); a.Type != model.AccessSubscription {
				t.Errorf("%+v", a)
			}
			if a := accessAt(t, tx, fixCustomer, contentA1, p1.end); a.Type != model.AccessPreview || !a.Active {
				t.Errorf("after the subscription, the preview: %+v", a)
			}
		})
	})
	t.Run("revoked purchase, live subscription", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			subscribe(t, tx)
			grant(t, tx, model.AccessPurchased, true)
			if a := accessAt(t, tx, fixCustomer, contentA1, now); a.Type != model.AccessSubscription || !a.Active {
				t.Errorf("%+v", a)
			}
			if a := accessAt(t, tx, fixCustomer, contentA1, p1.end.Add(time.Second)); a.Type != model.AccessPurchased || a.Active || a.RevokedAt == nil {
				t.Errorf("after the subscription, the revoked purchase: %+v", a)
			}
		})
	})
	t.Run("the longest subscription answers", func(t *testing.T) {
		inTx(t, bdb, func(tx bun.Tx) {
			subscribe(t, tx)
			handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_o", t0, p2, status(model.SubscriptionActive),
				subID("sub_org"), link(fixCustomer, planOrg)))
			if a := accessAt(t, tx, fixCustomer, contentA1, now); a.Subscription.ID != "sub_org" || !a.ExpiresAt.Equal(p2.end) {
				t.Errorf("%+v", a.Subscription)
			}
		})
	})
}

// The access check is one statement on indexes: on a catalog and
// subscription table large enough for the planner to care, no sequential
// scan, and the customer's subscriptions come from subscriptions_access_idx.
func TestAccessQueryUsesIndexes(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	seed := []string{
		`INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
		 SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(to_hex(g % 200), 12, '0'))::uuid,
		        CASE WHEN g % 3 = 0 THEN NULL ELSE 'cr_' || g END, 'plan ' || g, 1000, 'usd', 'month'
		 FROM generate_series(1, 2000) g`,
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency)
		 SELECT gen_random_uuid(), 'cr_' || (g % 2000), ('00000000-0000-4000-8000-' || lpad(to_hex(g % 200), 12, '0'))::uuid, 500, 'usd'
		 FROM generate_series(1, 20000) g`,
		`WITH p AS (SELECT array_agg(id ORDER BY id) AS ids FROM subscription_plans)
		 INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end,
		    access_until, event_created, last_event_id)
		 SELECT 'sub_' || g, 'user_' || (g % 5000), p.ids[1 + g % 2000], 'active', now(), now() + interval '30 days',
		        CASE WHEN g % 4 = 0 THEN NULL ELSE now() + interval '30 days' END, now(), 'evt_' || g
		 FROM generate_series(1, 20000) g, p`,
		`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
		    platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
		    stripe_checkout_session_id, status, purchased_at)
		 SELECT gen_random_uuid(), 'user_' || n, id, organization_id, 500, 'usd', 50, 0, 450, 1000, 0, 'cs_' || n, 'completed', now()
		 FROM (SELECT id, organization_id, row_number() OVER () AS n FROM content LIMIT 5000) c`,
		`INSERT INTO content_access (user_id, content_id, organization_id, access_type, purchase_id)
		 SELECT customer_id, content_id, organization_id, 'purchased', id FROM purchases`,
		`VACUUM ANALYZE`,
	}
	for _, q := range seed {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	var plan []byte
	err := bdb.DB.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) "+AccessQuery, "user_42", contentA1, time.Now()).Scan(&plan)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		nodes = append(nodes, strings.TrimSpace(str(n["Node Type"])+" "+str(n["Index Name"])+" "+str(n["Relation Name"])))
		for _, c := range asSlice(n["Plans"]) {
			walk(c.(map[string]any))
		}
	}
	var doc []map[string]any
	if err := json.Unmarshal(plan, &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc[0]["Plan"].(map[string]any))
	joined := strings.Join(nodes, "\n")
	if strings.Contains(joined, "Seq Scan") || !strings.Contains(joined, "subscriptions_access_idx") {
		t.Errorf("access query plan:\n%s", joined)
	}
	// The real thing answers on this data too.
	if _, err := CheckAccess(ctx, bdb.DB, "user_42", contentA1, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// The batch statement answers every pair exactly as the single statement
// does: over a world with every kind of grant (a creator plan, an
// organization plan that lapsed, purchases live and refunded, a
// complimentary, a preview, an expired grant, deleted and foreign content,
// customers with nothing) and thousands of random batches of its pairs,
// repeats and unknown ids included, at times before, inside and after the
// subscriptions' periods.
func TestAccessBatchAnswersAsOneByOne(t *testing.T) {
	bdb := catalogDB(t)
	ctx := context.Background()
	s := mustStore(t, newFakeStripe())
	inTx(t, bdb, func(tx bun.Tx) {
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_a", t0, p1, status(model.SubscriptionActive)))
		handle(t, s, tx, subEvent(t, shapeOld, TypeSubscriptionCreated, "evt_o", t0, p2, status(model.SubscriptionActive),
			subID("sub_org"), link("user_43", planOrg)))
		grant := func(customer string, content uuid.UUID, typ string, purchase string, revoked, expires *time.Time) {
			t.Helper()
			var pid *uuid.UUID
			if purchase != "" {
				id := uuid.New()
				pid = &id
				if _, err := tx.NewRaw(`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
					platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
					stripe_checkout_session_id, status, purchased_at, refunded_at, refund_amount_cents)
					VALUES (?, ?, ?, ?, 500, 'usd', 50, 0, 450, 1000, 0, ?, ?, ?, ?, ?)`,
					id, customer, content, orgID, "cs_"+id.String(), purchase, t0, revoked, refundedCents(revoked)).Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			org := orgID
			if content == contentX1 {
				org = otherOrg
			}
			row := &model.ContentAccess{UserID: customer, ContentID: content, OrganizationID: org, AccessType: typ,
				PurchaseID: pid, GrantedAt: t0, RevokedAt: revoked, ExpiresAt: expires}
			if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mid := t0.Add(10 * day)
		grant(fixCustomer, contentA1, model.AccessPurchased, "completed", nil, nil)
		grant(fixCustomer, contentB1, model.AccessPurchased, "refunded", &mid, nil)
		grant("user_43", contentA1, model.AccessComplimentary, "", nil, nil)
		grant("user_43", contentX1, model.AccessPreview, "", nil, &mid)
		grant("user_44", contentB1, model.AccessPreview, "", nil, &mid)
		grant("user_44", contentA2, model.AccessPurchased, "completed", nil, nil)

		customers := []string{fixCustomer, "user_43", "user_44", "user_45", "nobody"}
		contents := []uuid.UUID{contentA1, contentA2, contentB1, contentX1, uuid.New()}
		times := []time.Time{t0.Add(-day), t0.Add(day), mid.Add(time.Second), p1.end, p2.end.Add(-time.Second), p2.end.Add(day)}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 400 {
			now := times[rng.IntN(len(times))]
			keys := make([]AccessKey, 1+rng.IntN(40))
			for j := range keys {
				keys[j] = AccessKey{Customer: customers[rng.IntN(len(customers))], Content: contents[rng.IntN(len(contents))]}
			}
			got, err := CheckAccessBatch(ctx, tx.Tx, keys, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(keys) {
				t.Fatalf("batch %d: %d answers for %d pairs", i, len(got), len(keys))
			}
			for j, k := range keys {
				if want := accessAt(t, tx, k.Customer, k.Content, now); !reflect.DeepEqual(got[j], want) {
					t.Fatalf("batch %d, pair %d (%s → %s at %s):\n batch  %+v\n single %+v", i, j, k.Customer, k.Content, now, got[j], want)
				}
			}
		}
	})
}

// refundedCents is what a test purchase revoked at revoked refunded: all
// of its 500, or nothing.
func refundedCents(revoked *time.Time) int {
	if revoked != nil {
		return 500
	}
	return 0
}

// A batch of none asks nothing and answers nothing.
func TestAccessBatchOfNone(t *testing.T) {
	bdb := catalogDB(t)
	got, err := CheckAccessBatch(context.Background(), bdb.DB, nil, t0)
	if err != nil || len(got) != 0 {
		t.Fatalf("CheckAccessBatch(nil) = %v, %v", got, err)
	}
}
