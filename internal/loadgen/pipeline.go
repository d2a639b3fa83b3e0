package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// Load publishes n events straight to STRIPE_EVENTS, exactly as the edge
// would (subject, headers, Nats-Msg-Id, receipt time now), from conc
// publishers. It fills the backlog the processor group is then timed on.
func Load(ctx context.Context, js jetstream.JetStream, p *Payloads, n, conc int) error {
	return publishN(ctx, js, n, conc, func() func(int) stripeevent.Event {
		var buf []byte // each publisher's
		return func(int) stripeevent.Event {
			var ids IDs
			buf, ids = p.Next(buf)
			return stripeevent.Event{ID: ids.Event, Type: "checkout.session.completed", APIVersion: "2023-10-16",
				Endpoint: streams.DefaultEndpoint, Created: time.Now(), ReceivedAt: time.Now(), Source: "bench",
				Payload: append([]byte(nil), buf...)}
		}
	})
}

// publishN publishes events 0..n-1, in order, from conc publishers, each
// event built by its publisher's function (newPublisher gives each one).
func publishN(ctx context.Context, js jetstream.JetStream, n, conc int, newPublisher func() func(i int) stripeevent.Event) error {
	pub := streams.NewPublisher(js)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		event := newPublisher()
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if _, err := pub.Publish(ctx, event(int(i))); err != nil {
					errs <- fmt.Errorf("load: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// WaitEvents polls stripe_events until it holds at least want rows, and
// prints progress to w.
func WaitEvents(ctx context.Context, db bun.IDB, want int, w io.Writer) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		n, err := db.NewSelect().Table("stripe_events").Count(ctx)
		if err != nil {
			return fmt.Errorf("count stripe_events: %w", err)
		}
		if int(n) >= want {
			if w != nil {
				fmt.Fprintf(w, "\r%-60s\r", "")
			}
			return nil
		}
		if w != nil && time.Since(last) > time.Second {
			fmt.Fprintf(w, "\r  committed %d / %d", n, want)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d events (have %d): %w", want, n, ctx.Err())
		case <-t.C:
		}
	}
}

// Purchase is what every baseline event buys: the seeded content with its
// split, already computed (the processor computes it per event).
type Purchase struct {
	ContentID, OrganizationID     uuid.UUID
	CreatorID                     string
	Amount                        int64
	Currency                      string
	PlatformFee, OrgFee, Creator  int64
	PlatformBps, OrgBps           int
	PlatformAgreement, CreatorOrg *uuid.UUID
}

// SQLBaseline executes the processor's SQL effects for n events directly
// against Postgres, one transaction per event, from conc workers: the
// stripe_events row with its payload, the purchase with its split, the
// access grant, the outbox row, and the sale's ledger posting with the
// statements a posting of one transaction needs (ledger.PostMany: the
// transaction, the accounts' balances, the entries), last before the
// commit as in the processor. It is the per-event ceiling the processor
// group is compared with (no broker, no decoding, no validation reads, no
// rules: the entries are fixed in advance, ledgerRows).
func SQLBaseline(ctx context.Context, db *bun.DB, p *Payloads, pur Purchase, n, conc int, w io.Writer) (Result, error) {
	ledger := ledgerRows(pur)
	return perEventTx(ctx, db, n, conc, w, func() eventTx {
		var buf []byte // each worker's
		return func(ctx context.Context, tx bun.Tx, _ int) error {
			var ids IDs
			buf, ids = p.Next(buf)
			return baselineTx(ctx, tx, ids, buf, pur, ledger)
		}
	})
}

// eventTx writes event i of a baseline in tx.
type eventTx func(ctx context.Context, tx bun.Tx, i int) error

// perEventTx runs events 0..n-1, in order, from conc workers, each event in
// a transaction of its own written by the worker's eventTx (newWorker
// gives each worker one), and times them as the sql-baseline.
func perEventTx(ctx context.Context, db *bun.DB, n, conc int, w io.Writer, newWorker func() eventTx) (Result, error) {
	rec := newRecorder()
	stopProgress := startProgress(w, "sql-baseline", rec)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range conc {
		wg.Add(1)
		write := newWorker()
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				t0 := time.Now()
				err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return write(ctx, tx, int(i)) })
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				rec.add(time.Since(t0), "", err == nil)
			}
		}()
	}
	wg.Wait()
	stopProgress()
	res := rec.result("sql-baseline", conc, time.Since(start))
	if err, _ := firstErr.Load().(error); err != nil {
		return res, fmt.Errorf("sql baseline: %w", err)
	}
	return res, nil
}

func baselineTx(ctx context.Context, tx bun.Tx, ids IDs, body []byte, pur Purchase, ledger []ledgerRow) error {
	now := time.Now().UTC()
	if _, err := tx.NewRaw(`INSERT INTO stripe_events (event_id, type, endpoint, livemode, api_version,
		stripe_created_at, received_at, processed_at, outcome, payload)
		VALUES (?, 'checkout.session.completed', 'default', false, '2023-10-16', ?, ?, ?, 'applied', ?)`,
		ids.Event, now, now, now, json.RawMessage(body)).Exec(ctx); err != nil {
		return err
	}
	id := uuid.New()
	if _, err := tx.NewRaw(`INSERT INTO purchases (id, customer_id, content_id, organization_id, creator_id,
		amount_paid_cents, currency, platform_fee_cents, organization_fee_cents, creator_payout_cents, platform_fee_bps,
		organization_fee_bps, platform_agreement_id, creator_org_agreement_id, stripe_checkout_session_id,
		stripe_payment_intent_id, status, purchased_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?)`,
		id, ids.Customer, pur.ContentID, pur.OrganizationID, pur.CreatorID, pur.Amount, pur.Currency, pur.PlatformFee,
		pur.OrgFee, pur.Creator, pur.PlatformBps, pur.OrgBps, pur.PlatformAgreement, pur.CreatorOrg, ids.Session,
		ids.PaymentIntent, now).Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewRaw(`INSERT INTO content_access (user_id, content_id, organization_id, access_type, purchase_id)
		VALUES (?, ?, ?, 'purchased', ?)
		ON CONFLICT (user_id, content_id) DO UPDATE SET access_type = 'purchased', purchase_id = EXCLUDED.purchase_id,
		revoked_at = NULL, updated_at = now()`,
		ids.Customer, pur.ContentID, pur.OrganizationID, id).Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewRaw(`INSERT INTO outbox (id, subject, event_type, aggregate_id, payload)
		VALUES (?, 'purchases.completed', 'com.paystream.purchase.completed.v1', ?, ?)`,
		uuid.New(), id, json.RawMessage(`{"specversion":"1.0","type":"com.paystream.purchase.completed.v1"}`)).Exec(ctx); err != nil {
		return err
	}
	return baselinePosting(ctx, tx, posting{purchase: &id, amount: pur.Amount, at: now}, ledger)
}

// Latency are end-to-end percentiles: edge receipt → committed transaction.
type Latency struct {
	Events int           `json:"events"`
	P50    time.Duration `json:"p50_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
	Max    time.Duration `json:"max_ns"`
	// Calls is how many handler calls (transactions: one per batch or per
	// lone event) applied the timed events; Events/Calls is the mean batch.
	Calls int `json:"calls"`
	// StartP50 and StartP99 are the time from receipt to the start of the
	// handler call that applied the event: broker, delivery and the wait for
	// a worker and a batch; the rest of P50/P99 is the transaction.
	StartP50 time.Duration `json:"start_p50_ns"`
	StartP99 time.Duration `json:"start_p99_ns"`
}
