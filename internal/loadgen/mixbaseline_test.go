package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/ledger"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

// The mixed stream's SQL baseline writes what the processor writes: the
// same stream drained by the processor group into one database and run by
// StreamBaseline against another leaves the same subscriptions, invoices
// with their split snapshots, ledger, outbox events and event rows.
func TestMixedBaselineWritesWhatTheProcessorWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pdb, pdsn := testenv.DB(t)
	bdb, _ := testenv.DB(t)
	purP, err := SeedDemo(ctx, pdb)
	if err != nil {
		t.Fatal(err)
	}
	purB, err := SeedDemo(ctx, bdb)
	if err != nil {
		t.Fatal(err)
	}
	p, err := demoPayloads(0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	run, err := MixedStream(p, purP, demo.CreatorPlanPriceCents, demo.PlanGraceDays, n, 0.5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, ev := range run.Events {
		if ev.Member != nil {
			types[ev.Type]++
		}
	}
	// 8 subscriptions seen in the warm-up, 8 new: each of the four types 8
	// times, half of the stream.
	want := map[string]int{"customer.subscription.created": 8, "customer.subscription.updated": 8, "invoice.paid": 16}
	if len(run.Events) != n || len(run.Warmup) != 8 || !maps.Equal(types, want) {
		t.Fatalf("%d events, %d in the warm-up, subscription events %v; want %d, 8, %v", len(run.Events), len(run.Warmup), types, n, want)
	}

	// The processor group drains the stream from an embedded broker.
	ns, err := devenv.StartNATS(devenv.NATSOptions{StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, js, err := connectBench(ns.ClientURL(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := streams.Ensure(ctx, js, streams.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := PipelineBenchConfig{Processors: 1, Workers: 2, Env: config.MapEnv(nil), Log: slog.New(slog.DiscardHandler)}
	g, err := startGroup(ctx, ns.ClientURL(), pdsn, cfg, processor.DefaultBatchSize, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	werr := LoadStream(ctx, js, run.Warmup, 1)
	if werr == nil {
		werr = WaitEvents(ctx, pdb, len(run.Warmup), nil)
	}
	if werr == nil {
		werr = LoadStream(ctx, js, run.Events, 1)
	}
	if werr == nil {
		werr = WaitEvents(ctx, pdb, len(run.Warmup)+n, nil)
	}
	if err := g.stop(); err != nil || werr != nil {
		t.Fatal(err, werr)
	}

	// The baseline runs the same stream; its invoices name this database's
	// seeded agreements.
	evs := run.Events
	for i, ev := range evs {
		if ev.Member != nil && ev.Member.invoice != nil {
			m, inv := *ev.Member, *ev.Member.invoice
			inv.PlatformAgreementID, inv.CreatorOrgAgreementID = purB.PlatformAgreement, purB.CreatorOrg
			m.invoice = &inv
			evs[i].Member = &m
		}
	}
	if _, err := StreamBaseline(ctx, bdb, run.Warmup, purB, 2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := StreamBaseline(ctx, bdb, evs, purB, 2, nil); err != nil {
		t.Fatal(err)
	}
	if d, err := ledger.Verify(ctx, bdb); err != nil || d != nil {
		t.Fatalf("baseline ledger: %v %v", d, err)
	}

	for _, q := range []string{
		`SELECT id, customer_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end,
			cancel_at_period_end, cancel_at, canceled_at, ended_at, trial_start, trial_end, started_at, past_due_since,
			access_until, expired_at, event_created, last_event_id, livemode FROM subscriptions ORDER BY id`,
		`SELECT id, subscription_id, plan_id, organization_id, creator_id, billing_reason, period_start, period_end,
			amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps,
			organization_fee_bps, platform_fee_config_id, stripe_charge_id, stripe_payment_intent_id, status, paid_at, livemode
			FROM subscription_invoices ORDER BY id`,
		`SELECT idempotency_key, cause, invoice_id, amount_cents, effective_at FROM ledger_transactions
			WHERE invoice_id IS NOT NULL ORDER BY 1`,
		`SELECT cause, count(*), sum(amount_cents) FROM ledger_transactions GROUP BY 1 ORDER BY 1`,
		`SELECT owner, currency, kind, balance, version FROM ledger_accounts ORDER BY 1, 2, 3`,
		`SELECT count(*) FROM ledger_entries`,
		`SELECT subject, event_type, aggregate_id, count(*) FROM outbox WHERE subject LIKE 'subscriptions.%' GROUP BY 1, 2, 3 ORDER BY 1, 3`,
		`SELECT subject, count(*) FROM outbox GROUP BY 1 ORDER BY 1`,
		`SELECT type, api_version, stripe_created_at, event_id FROM stripe_events WHERE type <> 'checkout.session.completed' ORDER BY event_id`,
		`SELECT type, count(*) FROM stripe_events GROUP BY 1 ORDER BY 1`,
		`SELECT (SELECT count(*) FROM purchases), (SELECT count(*) FROM content_access)`,
	} {
		got, want := dumpRows(t, bdb, q), dumpRows(t, pdb, q)
		if !slices.Equal(got, want) {
			t.Errorf("%s\nbaseline:  %v\nprocessor: %v", strings.Join(strings.Fields(q), " "), got, want)
		}
	}
}

// dumpRows renders the rows of q, one string per row.
func dumpRows(t *testing.T, db *bun.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			switch x := v.(type) {
			case []byte:
				vals[i] = string(x)
			case time.Time:
				vals[i] = x.UTC().Format(time.RFC3339Nano)
			}
		}
		out = append(out, fmt.Sprintf("%v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
