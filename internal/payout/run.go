// Package payout moves the money the ledger says each payee is owed to the
// payee's Stripe Express account, exactly once: a run takes every eligible
// payee's available balance into a payout (row + ledger posting, one
// database transaction), then creates one Stripe transfer per payout under
// an idempotency key derived from it, following DESIGN.md's rule for keys
// (see classify). It also holds the store functions of the Connect
// webhooks (account.updated, account.application.deauthorized,
// transfer.reversed), payee onboarding, the periodic job of the processor
// group and the reconciliation of Stripe's transfers with the payouts.
// docs/payouts.md draws the money flow and the failure handling.
package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/model"
)

// Metadata keys paystream writes on Stripe objects.
const (
	MetadataPayoutID  = "paystream_payout_id"
	MetadataPayeeKind = "paystream_payee_kind"
	MetadataPayeeID   = "paystream_payee_id"
)

// Step is a point of a payout's life where a fault-injection test stops a
// run as a crash would (WithFault).
type Step string

// Steps, in order.
const (
	StepCreated       Step = "created"        // the payout committed, no request marked yet
	StepBeforeRequest Step = "before_request" // the attempt committed, the request not sent
	StepAfterAnswer   Step = "after_answer"   // Stripe answered, nothing recorded yet
	StepCommit        Step = "commit"         // inside the settling transaction, before its commit
)

// Fault is called at each Step with the payout's id; an error stops the
// payout there, as a crash would, with nothing more written.
type Fault func(ctx context.Context, step Step, payoutID uuid.UUID) error

// Option adjusts a Runner.
type Option func(*Runner)

// WithFault makes the runner call f at each Step (fault-injection tests).
func WithFault(f Fault) Option { return func(r *Runner) { r.fault = f } }

// Runner runs payouts. Several runners, in one process or many, may run at
// once: every transition is conditioned on the state it read, so they
// never pay a payee twice (docs/payouts.md, "Concurrency").
type Runner struct {
	db     *bun.DB
	stripe Transfers
	cfg    Config
	m      *Metrics
	log    *slog.Logger
	fault  Fault
}

// NewRunner returns a runner paying through stripe. m may be nil; stripe
// may be nil for a runner that only makes dry runs.
func NewRunner(db *bun.DB, stripe Transfers, cfg Config, m *Metrics, log *slog.Logger, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if db == nil || log == nil {
		return nil, errors.New("payout: a database and a logger are required")
	}
	r := &Runner{db: db, stripe: stripe, cfg: cfg, m: m, log: log}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// PayeeRef names one payee: kind (creator or organization) and id.
type PayeeRef struct{ Kind, ID string }

// String returns "kind:id".
func (p PayeeRef) String() string { return p.Kind + ":" + p.ID }

// ParsePayeeRef reads "creator:<id>" or "organization:<uuid>".
func ParsePayeeRef(s string) (PayeeRef, error) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok || id == "" || (kind != model.PayeeCreator && kind != model.PayeeOrganization) {
		return PayeeRef{}, fmt.Errorf("payee %q is not creator:<id> or organization:<uuid>", s)
	}
	if kind == model.PayeeOrganization {
		if _, err := uuid.Parse(id); err != nil {
			return PayeeRef{}, fmt.Errorf("payee %q: an organization id is a uuid", s)
		}
	}
	return PayeeRef{Kind: kind, ID: id}, nil
}

// RunOptions narrow a run.
type RunOptions struct {
	DryRun bool      // report what would be paid; write and send nothing
	Payee  *PayeeRef // only this payee
}

// Planned is a payout a dry run would create.
type Planned struct {
	Payee       PayeeRef `json:"payee"`
	Currency    string   `json:"currency"`
	AmountCents int64    `json:"amount_cents"`
}

// Summary is what a run did.
type Summary struct {
	RunID      string           `json:"run_id"`
	DryRun     bool             `json:"dry_run"`
	Resumed    int              `json:"resumed"`  // open payouts from earlier runs it advanced
	Created    int              `json:"created"`  // new payouts
	Paid       int              `json:"paid"`     // settled paid (adopted included)
	Adopted    int              `json:"adopted"`  // paid by a transfer found listing the group
	Failed     int              `json:"failed"`   // refused for good
	Canceled   int              `json:"canceled"` // withdrawn before any request
	Retrying   int              `json:"retrying"` // still open: the same key next run, or a new key after the backoff
	BelowMin   int              `json:"below_minimum"`
	Errors     int              `json:"errors"` // payouts a database or unexpected error stopped; they resume next run
	PaidCents  map[string]int64 `json:"paid_cents"`
	Planned    []Planned        `json:"planned,omitempty"`
	StartedAt  time.Time        `json:"started_at"`
	FinishedAt time.Time        `json:"finished_at"`
}

// outcome is what advancing one payout did.
type outcome int

const (
	outRetrying outcome = iota
	outPaid
	outAdopted
	outFailed
	outCanceled
	outGone // another run moved it
)

// tally is a Summary under construction by the workers.
type tally struct {
	mu    sync.Mutex
	sum   *Summary
	first error // the first payout's error, wrapped by Run's
}

func (t *tally) add(p *model.Payout, o outcome, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sum
	switch {
	case err != nil:
		s.Errors++
		if t.first == nil {
			t.first = err
		}
	case o == outPaid || o == outAdopted:
		s.Paid++
		s.PaidCents[p.Currency] += p.AmountCents
		if o == outAdopted {
			s.Adopted++
		}
	case o == outFailed:
		s.Failed++
	case o == outCanceled:
		s.Canceled++
	case o == outRetrying:
		s.Retrying++
	}
}

// Run advances every open payout whose next attempt is due, then pays out
// every eligible balance of at least the minimum. Refusals are outcomes,
// not errors; the error reports payouts a database or unexpected failure
// stopped (they resume on the next run) or a failure to read at all.
func (r *Runner) Run(ctx context.Context, opts RunOptions) (Summary, error) {
	if r.stripe == nil && !opts.DryRun {
		return Summary{}, errors.New("payout: a run without a Stripe client can only be a dry run")
	}
	now := r.cfg.Now()
	sum := Summary{RunID: uuid.NewString(), DryRun: opts.DryRun, PaidCents: map[string]int64{}, StartedAt: now}
	log := r.log.With("run_id", sum.RunID)
	t := &tally{sum: &sum}
	open, payees, err := openPayouts(ctx, r.db, now, opts.Payee)
	if err != nil {
		return r.finish(sum, err)
	}
	sum.Resumed = len(open)
	if !opts.DryRun {
		parallel(ctx, r.cfg.Workers, open, func(ctx context.Context, p model.Payout) {
			o, err := r.advance(ctx, &p, payees[[2]string{p.PayeeKind, p.PayeeID}], log)
			logStopped(log, &p, err)
			t.add(&p, o, err)
		})
	}
	after := candidate{}
	for ctx.Err() == nil {
		cs, err := candidates(ctx, r.db, after, opts.Payee, candidatePage)
		if err != nil {
			return r.finish(sum, err)
		}
		var due []candidate
		for _, c := range cs {
			if c.Balance < r.cfg.Minimum.For(c.Currency) {
				sum.BelowMin++
				continue
			}
			due = append(due, c)
		}
		if opts.DryRun {
			for _, c := range due {
				sum.Planned = append(sum.Planned, Planned{Payee: PayeeRef{c.Kind, c.ID}, Currency: c.Currency, AmountCents: c.Balance})
			}
		} else {
			parallel(ctx, r.cfg.Workers, due, func(ctx context.Context, c candidate) {
				p, payee, err := createPayout(ctx, r.db, c, r.cfg.Now(), r.m)
				if err != nil || p == nil {
					if err != nil {
						log.Error("payout: create failed", "payee", c.Kind+":"+c.ID, "currency", c.Currency, "error", err)
					}
					t.add(&model.Payout{}, outGone, err)
					return
				}
				t.mu.Lock()
				sum.Created++
				t.mu.Unlock()
				if err := r.step(ctx, StepCreated, p.ID); err != nil {
					logStopped(log, p, err)
					t.add(p, outGone, err)
					return
				}
				o, err := r.advance(ctx, p, payee, log)
				logStopped(log, p, err)
				t.add(p, o, err)
			})
		}
		if len(cs) < candidatePage {
			break
		}
		after = cs[len(cs)-1]
	}
	var err2 error
	if sum.Errors > 0 {
		err2 = fmt.Errorf("payout run %s: %d payouts stopped by errors, they resume on the next run; the first: %w",
			sum.RunID, sum.Errors, t.first)
	}
	return r.finish(sum, errors.Join(ctx.Err(), err2))
}

func (r *Runner) finish(sum Summary, err error) (Summary, error) {
	sum.FinishedAt = r.cfg.Now()
	if !sum.DryRun {
		r.m.observeRun(sum.FinishedAt.Sub(sum.StartedAt), sum.FinishedAt, err)
	}
	return sum, err
}

// logStopped logs a payout an error stopped; it stays open and the next
// run resumes it where its committed state says.
func logStopped(log *slog.Logger, p *model.Payout, err error) {
	if err != nil {
		log.Error("payout: stopped by an error; the next run resumes it", "payout_id", p.ID,
			"payee", p.PayeeKind+":"+p.PayeeID, "status", p.Status, "attempts", p.Attempts, "error", err)
	}
}

// step calls the fault hook, if any.
func (r *Runner) step(ctx context.Context, s Step, id uuid.UUID) error {
	if r.fault == nil {
		return nil
	}
	return r.fault(ctx, s, id)
}

// parallel calls f for every item with at most n at once, until ctx ends.
func parallel[T any](ctx context.Context, n int, items []T, f func(context.Context, T)) {
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				f(ctx, it)
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
}
