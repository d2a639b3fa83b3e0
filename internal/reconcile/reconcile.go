// Package reconcile recovers Stripe events that never reached paystream: it
// lists events from the Stripe Events API and publishes each into
// STRIPE_EVENTS through the same publish path as the edge (same subject,
// Nats-Msg-Id = Stripe event id). Events the system already has are dropped
// by the broker's dedup window (a duplicate PubAck) or, later, by the
// processor's stripe_events table, so a run is safe to repeat at any time.
//
// Run is one pass; Periodic repeats it for the processor's periodic mode.
// The Stripe side is behind the Lister interface (StripeLister in
// production, a local fake in tests) and the broker behind Publisher
// (*streams.Publisher).
package reconcile

import (
	"github.com/paystream/paystream/internal/lease"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/streams"
)

// The types reconcile lists and publishes are the processor's: the route
// table of its families (HandledTypes), so a type a family learns is
// recovered too. Stripe's `types` filter takes at most MaxTypes.

// HandledTypes lists, sorted, the event types the processor routes that the
// platform's Events API lists: the purchase family's, the subscription
// family's and the payout family's platform ones (transfer.reversed). The
// Connect account events happen on connected accounts, which the platform's
// list does not have.
func HandledTypes() []string {
	types := append(purchase.HandledTypes(), subscription.HandledTypes()...)
	return slices.Sorted(slices.Values(append(types, payout.PlatformTypes()...)))
}

// MaxTypes is the most event types Stripe's Events API accepts in `types`.
const MaxTypes = 20

// MaxWindow is how far back the Stripe Events API lists events.
const MaxWindow = 30 * 24 * time.Hour

// DefaultWindow (RECONCILE_WINDOW, and the reconcile command's -since)
// covers Stripe's 3-day webhook retry horizon: an event older than that was
// either delivered or given up on by Stripe.
const DefaultWindow = 72 * time.Hour

// Source is the Paystream-Source header value of recovered events.
const Source = "reconcile"

// Query selects the events a Lister lists.
type Query struct {
	CreatedGTE    time.Time // only events created at or after this instant
	Types         []string  // only these event types (never empty)
	StartingAfter string    // resume cursor: list only events after (older than) this event id
	PageSize      int       // events per API page, 1–100
}

// Listed is one event as the Events API returned it.
type Listed struct {
	ID         string
	Type       string
	APIVersion string
	Livemode   bool
	Created    int64           // unix seconds
	Raw        json.RawMessage // the event object's exact JSON as Stripe served it
}

// Lister lists Stripe events newest first, as the Events API does, calling fn
// for each one and stopping at the first error fn returns (which it returns
// unchanged). A failed API call is returned classified with package fault:
// RateLimited and Unavailable are worth retrying, Unauthenticated and Invalid
// are not. RetryAfter extracts a server-suggested delay from such an error.
type Lister interface {
	ListEvents(ctx context.Context, q Query, fn func(Listed) error) error
}

// Publisher stores one event in STRIPE_EVENTS and reports whether the broker
// already had its id. *streams.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, ev stripeevent.Event) (streams.PubResult, error)
}

var _ Publisher = (*streams.Publisher)(nil)

// Config shapes one run. Zero values take the defaults noted per field.
type Config struct {
	Since    time.Duration    // window: events created in the last Since; required, at most MaxWindow
	Types    []string         // subset of HandledTypes(); all of them when empty
	Endpoint string           // endpoint name of the subject; streams.DefaultEndpoint when empty
	DryRun   bool             // list and count, publish nothing
	Now      func() time.Time // clock; time.Now when nil
	RunID    string           // identifies the run in logs and Paystream-Request-Id; a UUIDv7 when empty
	PageSize int              // events per API page; 100 (Stripe's maximum) when 0

	ProgressEvery    int           // print a progress line every this many events; 100 when 0
	ProgressInterval time.Duration // …or when this much time passed since the last one; 1s when 0

	// Backoff for failures that outlast stripe-go's own retries (a 429
	// without Stripe-Should-Retry, a long API or broker outage): Attempts
	// tries per page or publish, the delay doubling from BaseDelay up to
	// MaxDelay, or the API's Retry-After when it is longer.
	Attempts  int           // 6 when 0
	BaseDelay time.Duration // 1s when 0
	MaxDelay  time.Duration // 30s when 0

	// Index, when set, is read once at the start of the run: events it
	// holds count as already present without a publish. Without it only the
	// broker's dedup window recognises them (see Index for why that is not
	// enough). An Index failure is logged and the run goes on without it.
	Index Index

	Metrics *Metrics // optional; nil records nothing

	// Lease, when set, makes Periodic run once per interval across every
	// instance sharing it instead of once per instance (lease.NewKV on
	// LeaseBucket).
	// One-shot runs ignore it.
	Lease lease.Elector
}

// indexSkew is subtracted from the window start when reading the index: the
// broker's clock (message timestamps) and Stripe's (event created) differ.
const indexSkew = 5 * time.Minute

func (c *Config) setDefaults() {
	if len(c.Types) == 0 {
		c.Types = HandledTypes()
	}
	if c.Endpoint == "" {
		c.Endpoint = streams.DefaultEndpoint
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RunID == "" {
		c.RunID = newRunID()
	}
	if c.PageSize == 0 {
		c.PageSize = 100
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 100
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 6
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 30 * time.Second
	}
}

func (c *Config) validate() error {
	if c.Since <= 0 || c.Since > MaxWindow {
		return fmt.Errorf("reconcile: since %s must be positive and at most %s (Stripe lists events of the last 30 days)", c.Since, MaxWindow)
	}
	if len(c.Types) > MaxTypes {
		return fmt.Errorf("reconcile: %d event types given; the Stripe Events API filters on at most %d", len(c.Types), MaxTypes)
	}
	handled := HandledTypes()
	for _, t := range c.Types {
		if !slices.Contains(handled, t) {
			return fmt.Errorf("reconcile: event type %q is not handled by the processor (handled: %v)", t, handled)
		}
	}
	if !streams.ValidEndpoint(c.Endpoint) {
		return fmt.Errorf("reconcile: endpoint %q is not a valid endpoint name", c.Endpoint)
	}
	if c.PageSize < 1 || c.PageSize > 100 {
		return fmt.Errorf("reconcile: page size %d must be between 1 and 100", c.PageSize)
	}
	if c.Attempts < 1 || c.BaseDelay < 0 || c.MaxDelay < c.BaseDelay {
		return fmt.Errorf("reconcile: backoff attempts=%d base=%s max=%s is not usable", c.Attempts, c.BaseDelay, c.MaxDelay)
	}
	return nil
}

// Summary counts what a run did. Seen = Published + AlreadyPresent + Skipped
// + Failed (+ the candidates of a dry run).
type Summary struct {
	RunID          string    `json:"run_id"`
	Endpoint       string    `json:"endpoint"`
	DryRun         bool      `json:"dry_run"`
	Since          time.Time `json:"since"` // window start: events created at or after
	Types          []string  `json:"types"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	Seen           int       `json:"seen"`            // events the API listed
	Published      int       `json:"published"`       // new to the stream: these were missed
	AlreadyPresent int       `json:"already_present"` // in STRIPE_EVENTS (Index) or a duplicate PubAck
	Indexed        int       `json:"indexed"`         // event ids the Index found in the stream; -1 without an Index
	Skipped        int       `json:"skipped"`         // not a requested type, or not a usable event
	Failed         int       `json:"failed"`          // could not be published after every attempt
	Candidates     int       `json:"candidates"`      // dry run: events that would be published
	Backoffs       int       `json:"backoffs"`        // waits of our own backoff (API or broker)
	Oldest         int64     `json:"oldest_created"`  // created of the oldest event seen, unix seconds
	Error          string    `json:"error,omitempty"` // why the run stopped early
}

// Run lists the events of the window and publishes each through pub. It
// stops at the first failure that outlasts the backoff, returning the
// summary so far and the error; a rerun is always safe. Progress lines go to
// progress (io.Discard to silence them).
func Run(ctx context.Context, cfg Config, lister Lister, pub Publisher, progress io.Writer, log *slog.Logger) (Summary, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	if pub == nil && !cfg.DryRun {
		return Summary{}, errors.New("reconcile: no publisher (only a dry run may go without one)")
	}
	if progress == nil {
		progress = io.Discard
	}
	start := cfg.Now()
	r := &runner{ctx: ctx, cfg: cfg, lister: lister, pub: pub, progress: progress,
		log: log.With("run_id", cfg.RunID, "endpoint", cfg.Endpoint)}
	r.sum = Summary{
		RunID: cfg.RunID, Endpoint: cfg.Endpoint, DryRun: cfg.DryRun,
		Since: start.Add(-cfg.Since).Truncate(time.Second), Types: cfg.Types, StartedAt: start,
	}
	r.lastProgress = start
	r.sum.Indexed = -1
	if cfg.Index != nil {
		ids, err := cfg.Index.StoredSince(ctx, r.sum.Since.Add(-indexSkew))
		if err != nil {
			// Safe to go on: the broker and stripe_events still drop what
			// is already there; the run only does more work.
			r.log.Warn("reconcile: cannot read STRIPE_EVENTS; relying on broker and processor dedup", "error", err)
		} else {
			r.present, r.sum.Indexed = ids, len(ids)
		}
	}
	r.log.Info("reconcile started", "since", r.sum.Since, "types", cfg.Types, "dry_run", cfg.DryRun)
	err := r.list(ctx)
	r.sum.FinishedAt = cfg.Now()
	if err != nil {
		r.sum.Error = err.Error()
	}
	cfg.Metrics.observeRun(r.sum, err)
	fmt.Fprintln(progress, r.sum.progressLine("done"))
	if err != nil {
		r.log.Error("reconcile stopped", "error", err, "seen", r.sum.Seen, "published", r.sum.Published)
		return r.sum, err
	}
	r.log.Info("reconcile finished", "seen", r.sum.Seen, "published", r.sum.Published,
		"already_present", r.sum.AlreadyPresent, "skipped", r.sum.Skipped, "failed", r.sum.Failed,
		"duration_seconds", r.sum.FinishedAt.Sub(r.sum.StartedAt).Seconds())
	return r.sum, nil
}

type runner struct {
	ctx          context.Context // the run's; Lister callbacks carry none
	cfg          Config
	lister       Lister
	pub          Publisher
	progress     io.Writer
	log          *slog.Logger
	sum          Summary
	present      IDSet  // from cfg.Index; nil without one
	cursor       string // id of the last event handled: where a resumed listing starts
	lastProgress time.Time
	sinceLast    int
}

// errHandled marks an error that came out of our own callback (a publish that
// failed for good), so the listing loop does not retry it as an API error.
type errHandled struct{ err error }

func (e errHandled) Error() string { return e.err.Error() }
func (e errHandled) Unwrap() error { return e.err }

// list pages through the window. When the API fails in a retryable way after
// stripe-go's own retries, it waits and resumes after the last event handled,
// so nothing is listed twice and nothing is skipped.
func (r *runner) list(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		progressed := r.cursor
		q := Query{CreatedGTE: r.sum.Since, Types: r.cfg.Types, StartingAfter: r.cursor, PageSize: r.cfg.PageSize}
		err := r.lister.ListEvents(ctx, q, r.handle)
		if err == nil {
			return nil
		}
		var h errHandled
		if errors.As(err, &h) {
			return h.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("reconcile: list events: %w", ctx.Err())
		}
		if r.cursor != progressed {
			attempt = 1 // the listing moved forward: the budget is per stuck page
		}
		switch fault.CodeOf(err) {
		case fault.RateLimited, fault.Unavailable, fault.Internal:
		default:
			return fmt.Errorf("reconcile: list events: %w", err)
		}
		if attempt >= r.cfg.Attempts {
			return fmt.Errorf("reconcile: list events: giving up after %d attempts: %w", attempt, err)
		}
		d := r.delay(attempt, RetryAfter(err))
		r.note("list", attempt, d, err)
		if err := sleep(ctx, d); err != nil {
			return fmt.Errorf("reconcile: list events: %w", err)
		}
	}
}

// handle takes one listed event: validate, publish, count.
func (r *runner) handle(ev Listed) error {
	r.sum.Seen++
	if r.sum.Oldest == 0 || ev.Created < r.sum.Oldest {
		r.sum.Oldest = ev.Created
	}
	defer func() {
		r.cursor = ev.ID
		r.maybeProgress()
	}()
	if reason := r.check(ev); reason != "" {
		r.sum.Skipped++
		r.cfg.Metrics.event(resultSkipped)
		r.log.Warn("reconcile skipped event", "stripe_event_id", ev.ID, "type", ev.Type, "reason", reason)
		return nil
	}
	if r.present.Has(ev.ID) {
		r.sum.AlreadyPresent++
		r.cfg.Metrics.event(resultAlreadyPresent)
		r.log.Debug("reconcile: stream already has event", "stripe_event_id", ev.ID, "type", ev.Type)
		return nil
	}
	if r.cfg.DryRun {
		r.sum.Candidates++
		r.log.Info("reconcile dry run: would publish", "stripe_event_id", ev.ID, "type", ev.Type, "created", ev.Created)
		return nil
	}
	se := stripeevent.Event{
		ID: ev.ID, Type: ev.Type, APIVersion: ev.APIVersion, Livemode: ev.Livemode, Created: time.Unix(ev.Created, 0).UTC(),
		Endpoint: r.cfg.Endpoint, ReceivedAt: r.cfg.Now(), RequestID: "reconcile-" + r.cfg.RunID, Source: Source,
		Payload: ev.Raw,
	}
	res, err := r.publish(r.ctx, se)
	if err != nil {
		r.sum.Failed++
		r.cfg.Metrics.event(resultFailed)
		r.log.Error("reconcile could not publish event", "stripe_event_id", ev.ID, "type", ev.Type, "error", err)
		return errHandled{fmt.Errorf("reconcile: publish %s: %w", ev.ID, err)}
	}
	if res.Duplicate {
		r.sum.AlreadyPresent++
		r.cfg.Metrics.event(resultAlreadyPresent)
		r.log.Debug("reconcile: broker already has event", "stripe_event_id", ev.ID, "type", ev.Type, "stream_seq", res.Sequence)
		return nil
	}
	r.sum.Published++
	r.cfg.Metrics.event(resultPublished)
	r.log.Info("reconcile published missed event", "stripe_event_id", ev.ID, "type", ev.Type,
		"created", ev.Created, "stream_seq", res.Sequence)
	return nil
}

// check returns why ev cannot be published, or "". The Events API is outside
// input like any webhook: a type outside the filter (an API that ignored it),
// an id or type that would not make a safe subject, or a body that is not a
// JSON object never reaches the stream.
func (r *runner) check(ev Listed) string {
	switch {
	case !slices.Contains(r.cfg.Types, ev.Type):
		return "type_not_requested"
	case !streams.ValidEventID(ev.ID):
		return "invalid_event_id"
	case !streams.ValidEventType(ev.Type):
		return "invalid_event_type"
	case len(ev.Raw) == 0 || ev.Raw[0] != '{' || !json.Valid(ev.Raw):
		return "invalid_json"
	}
	return ""
}

// publish retries broker failures (streams.ErrUnavailable) with backoff.
// Each attempt is bounded by PubAckTimeout. An abandoned PubAck wait loses
// nothing: the message is in the stream or not, and a rerun sorts it out.
func (r *runner) publish(ctx context.Context, ev stripeevent.Event) (streams.PubResult, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, PubAckTimeout)
		res, err := r.pub.Publish(actx, ev)
		cancel()
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, streams.ErrUnavailable) || attempt >= r.cfg.Attempts {
			return res, err
		}
		d := r.delay(attempt, 0)
		r.note("publish", attempt, d, err)
		if err := sleep(ctx, d); err != nil {
			return res, err
		}
	}
}

// PubAckTimeout bounds one publish attempt.
const PubAckTimeout = 10 * time.Second

// delay is BaseDelay doubled per attempt, capped at MaxDelay, but never less
// than what the server asked for.
func (r *runner) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := r.cfg.BaseDelay
	for i := 1; i < attempt && d < r.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxDelay)
	return max(d, retryAfter)
}

func (r *runner) note(op string, attempt int, d time.Duration, err error) {
	r.sum.Backoffs++
	r.cfg.Metrics.backoff(op)
	r.log.Warn("reconcile backing off", "op", op, "attempt", attempt, "max_attempts", r.cfg.Attempts,
		"delay_seconds", d.Seconds(), "error", err)
	fmt.Fprintf(r.progress, "reconcile: %s failed (attempt %d/%d), retrying in %s: %v\n", op, attempt, r.cfg.Attempts, d, err)
}

func (r *runner) maybeProgress() {
	r.sinceLast++
	now := r.cfg.Now()
	if r.sinceLast < r.cfg.ProgressEvery && now.Sub(r.lastProgress) < r.cfg.ProgressInterval {
		return
	}
	r.sinceLast, r.lastProgress = 0, now
	fmt.Fprintln(r.progress, r.sum.progressLine("progress"))
}

func (s Summary) progressLine(prefix string) string {
	line := fmt.Sprintf("reconcile %s: seen=%d published=%d already_present=%d skipped=%d failed=%d",
		prefix, s.Seen, s.Published, s.AlreadyPresent, s.Skipped, s.Failed)
	if s.DryRun {
		line += fmt.Sprintf(" would_publish=%d", s.Candidates)
	}
	if s.Indexed >= 0 {
		line += fmt.Sprintf(" indexed=%d", s.Indexed)
	}
	if s.Oldest != 0 {
		line += " oldest=" + time.Unix(s.Oldest, 0).UTC().Format(time.RFC3339)
	}
	return line
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newRunID returns a time-ordered id, so run ids sort by start time in logs.
func newRunID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
