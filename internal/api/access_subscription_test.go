package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// The access check answers through a subscription when one grants the
// content and no purchased or complimentary grant does, with its id,
// status and access_until; a plan grants only its creator's (or its
// organization's) live content.
func TestAccessCheckWithSubscriptions(t *testing.T) {
	h := newHarness(t, nil)
	creatorPlan, orgPlan, otherCreator := h.plan("creator_1", 900, 0), h.plan("", 5000, 0), h.plan("creator_2", 900, 0)
	now := time.Now()
	monthAgo := now.AddDate(0, 0, -10)

	member := h.subscribe("sub_member", "member", creatorPlan, model.SubscriptionActive, now)
	h.subscribe("sub_org", "orgmember", orgPlan, model.SubscriptionTrialing, now)
	h.subscribe("sub_other", "othercreator", otherCreator, model.SubscriptionActive, now)
	h.subscribe("sub_lapsed", "lapsed", creatorPlan, model.SubscriptionPastDue, monthAgo) // grace ended 7 days ago
	h.subscribe("sub_grace", "grace", creatorPlan, model.SubscriptionPastDue, now.Add(-24*time.Hour))
	h.subscribe("sub_canceled", "canceled", creatorPlan, model.SubscriptionCanceled, now)

	h.subscribe("sub_buyer", "buyer", creatorPlan, model.SubscriptionActive, now)
	bought := h.purchase("buyer", model.PurchaseCompleted, now)
	h.grant(&model.ContentAccess{UserID: "buyer", AccessType: model.AccessPurchased, PurchaseID: &bought.ID})
	h.subscribe("sub_comp", "comp", creatorPlan, model.SubscriptionActive, now)
	h.grant(&model.ContentAccess{UserID: "comp", AccessType: model.AccessComplimentary})
	h.subscribe("sub_refunded", "refunded", creatorPlan, model.SubscriptionActive, now)
	refunded := h.purchase("refunded", model.PurchaseRefunded, now)
	h.grant(&model.ContentAccess{UserID: "refunded", AccessType: model.AccessPurchased, PurchaseID: &refunded.ID, RevokedAt: &now})
	h.subscribe("sub_preview", "preview", creatorPlan, model.SubscriptionActive, now)
	h.grant(&model.ContentAccess{UserID: "preview", AccessType: model.AccessPreview})

	tests := []struct {
		customer string
		content  uuid.UUID
		active   bool
		typ      any
		sub      string // the granting subscription, "" for none
		purchase bool
	}{
		{"member", h.paid, true, "subscription", "sub_member", false},
		{"member", h.deleted, false, nil, "", false}, // deleted content: no plan grants it
		{"orgmember", h.paid, true, "subscription", "sub_org", false},
		{"othercreator", h.paid, false, nil, "", false},
		{"lapsed", h.paid, false, nil, "", false},
		{"grace", h.paid, true, "subscription", "sub_grace", false},
		{"canceled", h.paid, false, nil, "", false},
		{"buyer", h.paid, true, "purchased", "", true},
		{"comp", h.paid, true, "complimentary", "", false},
		{"refunded", h.paid, true, "subscription", "sub_refunded", false},
		{"preview", h.paid, true, "subscription", "sub_preview", false},
	}
	for _, tt := range tests {
		t.Run(tt.customer+" "+tt.content.String()[:8], func(t *testing.T) {
			r := h.call(http.MethodGet, "/v1/customers/"+tt.customer+"/access/"+tt.content.String(), keyA, nil)
			if r.Status != http.StatusOK || r.Body["active"] != tt.active || r.Body["access_type"] != tt.typ {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			sub, _ := r.Body["subscription"].(map[string]any)
			switch {
			case tt.sub == "" && sub != nil:
				t.Errorf("subscription = %v, want null", sub)
			case tt.sub != "" && sub["id"] != tt.sub:
				t.Errorf("subscription = %v, want %s", sub, tt.sub)
			}
			if (r.Body["purchase"] != nil) != tt.purchase {
				t.Errorf("purchase = %v", r.Body["purchase"])
			}
		})
	}
	r := h.call(http.MethodGet, "/v1/customers/member/access/"+h.paid.String(), keyA, nil)
	sub := r.Body["subscription"].(map[string]any)
	if sub["status"] != "active" || !mustTime(t, r.Body["expires_at"]).Equal(*member.AccessUntil) ||
		!mustTime(t, r.Body["since"]).Equal(*member.StartedAt) || r.Body["revoked_at"] != nil {
		t.Errorf("member: %s, want expires_at %s since %s", r.Raw, member.AccessUntil, member.StartedAt)
	}
	// access_until passes: access ends on time without anything running.
	h2 := newHarness(t, func(c *api.Config) { c.Now = func() time.Time { return member.AccessUntil.Add(time.Second) } })
	p := h2.plan("creator_1", 900, 0)
	ended := h2.subscribe("sub_ended", "member", p, model.SubscriptionActive, now)
	if r := h2.call(http.MethodGet, "/v1/customers/member/access/"+h2.paid.String(), keyA, nil); r.Body["active"] != false ||
		!ended.AccessUntil.Before(h2.cfg.Now()) {
		t.Errorf("after access_until: %s", r.Raw)
	}
}

// The route runs one statement, subscription.AccessQuery, prepared on its
// connection, and that statement's plans — the custom plans of its first
// executions and the generic plan Postgres may switch to after five — read
// every table through an index (the customer's subscriptions through
// subscriptions_access_idx), on tables large enough for the planner to
// care.
func TestAccessCheckIsOnePreparedIndexedStatement(t *testing.T) {
	ctx := context.Background()
	bdb, content := plannerWorld(t)
	// user_7's plan 8 is creator cr_8's; user_6's plan 7 is cr_7's, whose
	// content this is: a subscription grants it.
	srv, err := api.New(bdb, api.Config{Keys: []string{keyA}, StripeSecretKey: "sk_test_unused"}, newRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	for i := range 7 {
		for _, customer := range []string{"user_6", "user_7"} {
			req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/customers/"+customer+"/access/"+content.String(), nil)
			req.Header.Set("Authorization", "Bearer "+keyA)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(res.Body).Decode(&body)
			_ = res.Body.Close()
			if want := customer == "user_6"; res.StatusCode != http.StatusOK || body["active"] != want {
				t.Fatalf("check %d of %s: %d %v, want active %v", i, customer, res.StatusCode, body, want)
			}
		}
	}

	var names []string
	if err := bdb.NewRaw("SELECT name FROM pg_prepared_statements WHERE statement = ?", subscription.AccessQuery).Scan(ctx, &names); err != nil {
		t.Fatal(err)
	}
	var all int
	if err := bdb.NewRaw("SELECT count(*) FROM pg_prepared_statements").Scan(ctx, &all); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || all != 1 {
		t.Fatalf("prepared statements: %d of subscription.AccessQuery (%v), %d in all; want the one", len(names), names, all)
	}
	checkIndexedPlans(t, bdb, `EXPLAIN (FORMAT JSON) EXECUTE "`+names[0]+`"('user_6', '`+content.String()+`'::uuid, now())`,
		"content_access", "purchases", "subscriptions", "subscription_plans", "content")
}

// plannerWorld is a one-connection pool (a statement the route prepares
// and the test's queries meet on it, so pg_prepared_statements shows what
// the route prepared) over a database seeded by seedPlannerWorld, and the
// content item it returns.
func plannerWorld(t *testing.T) (*bun.DB, uuid.UUID) {
	t.Helper()
	_, dsn := testenv.DB(t)
	bdb, err := db.Open(context.Background(), dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })
	return bdb, seedPlannerWorld(t, bdb)
}

// seedPlannerWorld fills bdb with tables large enough for the planner to
// care (2 000 plans, 20 000 content items and subscriptions, 5 000
// purchases and grants) and returns the content item of plan 7's creator
// cr_7: user_6's subscription grants it, user_7's does not.
func seedPlannerWorld(t *testing.T, bdb *bun.DB) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	org := "00000000-0000-4000-8000-000000000007" // plan 7's organization
	content := uuid.MustParse("00000000-0000-4000-8000-0000000c0001")
	seed := []string{
		`INSERT INTO subscription_plans (id, organization_id, creator_id, name, price_cents, currency, interval)
		 SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(g), 12, '0'))::uuid,
		        ('00000000-0000-4000-8000-' || lpad(to_hex(g % 200), 12, '0'))::uuid,
		        CASE WHEN g % 3 = 0 THEN NULL ELSE 'cr_' || g END, 'plan ' || g, 1000, 'usd', 'month'
		 FROM generate_series(1, 2000) g`,
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency)
		 SELECT gen_random_uuid(), 'cr_' || (g % 2000), ('00000000-0000-4000-8000-' || lpad(to_hex(g % 200), 12, '0'))::uuid, 500, 'usd'
		 FROM generate_series(1, 20000) g`,
		`INSERT INTO content (id, creator_id, organization_id, price_cents, currency) VALUES ('` + content.String() + `', 'cr_7', '` + org + `', 500, 'usd')`,
		`INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end,
		    access_until, event_created, last_event_id)
		 SELECT 'sub_' || g, 'user_' || (g % 5000), ('00000000-0000-4000-9000-' || lpad(to_hex(1 + g % 2000), 12, '0'))::uuid,
		        'active', now(), now() + interval '30 days',
		        CASE WHEN g % 4 = 0 THEN NULL ELSE now() + interval '30 days' END, now(), 'evt_' || g
		 FROM generate_series(1, 20000) g`,
		`INSERT INTO purchases (id, customer_id, content_id, organization_id, amount_paid_cents, currency,
		    platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps, organization_fee_bps,
		    stripe_checkout_session_id, status, purchased_at)
		 SELECT gen_random_uuid(), 'user_' || n, id, organization_id, 500, 'usd', 50, 0, 450, 1000, 0, 'cs_' || n, 'completed', now()
		 FROM (SELECT id, organization_id, row_number() OVER () AS n FROM content LIMIT 5000) c`,
		`INSERT INTO content_access (user_id, content_id, organization_id, access_type, purchase_id)
		 SELECT customer_id, content_id, organization_id, 'purchased', id FROM purchases`,
		`ANALYZE`,
	}
	for _, q := range seed {
		if _, err := bdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	return content
}

// stmtQuerier runs a prepared statement as subscription.Querier.
type stmtQuerier struct{ *sql.Stmt }

func (s stmtQuerier) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.Stmt.QueryContext(ctx, args...)
}

// The batch statement, prepared as the route prepares it, settles on its
// generic plan after the five custom plans Postgres tries first, even for
// batches of two or three (had the planner seen the arrays, it would plan
// small batches anew on every execution), and both plans read every table
// through an index.
func TestAccessBatchStatementKeepsItsGenericPlan(t *testing.T) {
	ctx := context.Background()
	bdb, content := plannerWorld(t)
	st, err := bdb.DB.PrepareContext(ctx, subscription.AccessBatchQuery)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	keys := []subscription.AccessKey{{Customer: "user_6", Content: content}, {Customer: "user_7", Content: content},
		{Customer: "user_5", Content: content}}
	for i := range 12 {
		accs, err := subscription.CheckAccessBatch(ctx, stmtQuerier{st}, keys[:2+i%2], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !accs[0].Active || accs[1].Active {
			t.Fatalf("execution %d: %+v", i, accs)
		}
	}
	var name string
	var generic, custom int
	if err := bdb.DB.QueryRowContext(ctx, "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
		subscription.AccessBatchQuery).Scan(&name, &generic, &custom); err != nil {
		t.Fatal(err)
	}
	if custom > 5 || generic < 7 {
		t.Errorf("12 executions: %d custom plans, %d generic; want the generic plan after the first five", custom, generic)
	}
	checkIndexedPlans(t, bdb, `EXPLAIN (FORMAT JSON) EXECUTE "`+name+`"('{user_6,user_7}', '{`+content.String()+`,`+content.String()+`}', now())`,
		"content_access", "purchases", "subscriptions", "subscription_plans", "content")
}

// checkIndexedPlans explains, with both the custom and the generic plan
// forced, a prepared statement of bdb's one connection, and fails unless
// neither scans a table sequentially, both read the customer's
// subscriptions through subscriptions_access_idx and each of rels is read.
func checkIndexedPlans(t *testing.T, bdb *bun.DB, explain string, rels ...string) {
	t.Helper()
	ctx := context.Background()
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := bdb.ExecContext(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		var plan []byte
		if err := bdb.DB.QueryRowContext(ctx, explain).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		nodes := planNodes(t, plan)
		joined := strings.Join(nodes, "\n")
		if strings.Contains(joined, "Seq Scan") || !strings.Contains(joined, "subscriptions_access_idx") {
			t.Errorf("%s: plan scans a table or misses subscriptions_access_idx:\n%s", mode, joined)
		}
		for _, rel := range rels {
			if !slices.ContainsFunc(nodes, func(n string) bool { return strings.HasSuffix(n, " "+rel) && strings.Contains(n, "Scan") }) {
				t.Errorf("%s: plan does not read %s:\n%s", mode, rel, joined)
			}
		}
	}
	if _, err := bdb.ExecContext(ctx, "RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
}

// planNodes lists an EXPLAIN (FORMAT JSON) plan's nodes as "type index
// relation".
func planNodes(t *testing.T, plan []byte) []string {
	t.Helper()
	var doc []map[string]any
	if err := json.Unmarshal(plan, &doc); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		s := func(k string) string { v, _ := n[k].(string); return v }
		nodes = append(nodes, strings.TrimSpace(s("Node Type")+" "+s("Index Name")+" "+s("Relation Name")))
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			walk(c.(map[string]any))
		}
	}
	walk(doc[0]["Plan"].(map[string]any))
	return nodes
}
