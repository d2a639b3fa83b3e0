package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/paystream/paystream/model"
)

// idempotencyKey is the Stripe key of a payout's n-th key: payout:<id> for
// the first, payout:<id>:<n> after a spent one. The transfer group is
// payout:<id> whatever the key, so listing it finds what any key created.
func idempotencyKey(p *model.Payout) string {
	if p.Attempts <= 1 {
		return p.TransferGroup
	}
	return fmt.Sprintf("%s:%d", p.TransferGroup, p.Attempts)
}

// transferRequest is the request of p to the payee's account. Every field
// is a function of the payout row, so the same key always carries the same
// parameters (Stripe refuses a key reused with others).
func transferRequest(p *model.Payout, account string) TransferRequest {
	return TransferRequest{
		Amount: p.AmountCents, Currency: p.Currency, Destination: account, TransferGroup: p.TransferGroup,
		Description: "paystream payout " + p.ID.String(),
		Metadata: map[string]string{
			MetadataPayoutID: p.ID.String(), MetadataPayeeKind: p.PayeeKind, MetadataPayeeID: p.PayeeID,
		},
	}
}

// advance takes one open payout as far as it goes now:
//
//  1. a payout no request was sent for, whose payee is no longer eligible,
//     is failed (payee blocked) or canceled (payouts disabled), money back;
//  2. the attempt is committed (key number, first attempt time) before
//     anything is sent, so a crash after it sends the same key again;
//  3. under a key after a spent one, or more than ListAfter after the first
//     request, the transfer group is listed first and a transfer found
//     there is adopted instead of creating one;
//  4. the transfer is created under the key, and the answer settles the
//     payout (paid), keeps the key (unanswered), spends it (a new key after
//     the backoff) or fails the payout (refused).
func (r *Runner) advance(ctx context.Context, p *model.Payout, payee payeeState, log *slog.Logger) (outcome, error) {
	log = log.With("payout_id", p.ID, "payee", p.PayeeKind+":"+p.PayeeID)
	now := r.cfg.Now()
	if p.Attempts == 0 && !payee.eligible() {
		return r.withdraw(ctx, p, payee, log)
	}
	if err := markAttempt(ctx, r.db, p, now); err != nil {
		return gone(err)
	}
	if err := r.step(ctx, StepBeforeRequest, p.ID); err != nil {
		return outRetrying, err
	}
	account := payee.account()
	if p.Attempts > 1 || now.Sub(*p.FirstAttemptAt) > ListAfter {
		found, err := r.stripe.TransfersInGroup(ctx, p.TransferGroup)
		if err != nil {
			r.m.attempt(attemptListFailed)
			log.Warn("payout: cannot list the transfer group; nothing sent, the next run tries again", "error", err)
			return outRetrying, recordUnanswered(ctx, r.db, p, "list_failed", now)
		}
		if tr, ok := r.pick(found, p, account, log); ok {
			if err := r.step(ctx, StepAfterAnswer, p.ID); err != nil {
				return outRetrying, err
			}
			r.m.attempt(attemptAdopted)
			return r.paid(ctx, p, tr, outAdopted, log)
		}
	}
	key := idempotencyKey(p)
	tr, err := r.stripe.CreateTransfer(ctx, transferRequest(p, account), key)
	if ferr := r.step(ctx, StepAfterAnswer, p.ID); ferr != nil {
		return outRetrying, ferr
	}
	if err == nil {
		if !matches(tr, p, account) {
			return outRetrying, fmt.Errorf("payout %s: Stripe answered key %s with transfer %s of %d %s to %s in group %q; not settled",
				p.ID, key, tr.ID, tr.Amount, tr.Currency, tr.Destination, tr.TransferGroup)
		}
		r.m.attempt(attemptCreated)
		return r.paid(ctx, p, tr, outPaid, log)
	}
	if ctx.Err() != nil {
		return outRetrying, ctx.Err() // shutting down: the next run sends the same key
	}
	kind, code := classify(err)
	now = r.cfg.Now()
	switch kind {
	case refused:
		r.m.attempt(attemptRefused)
		log.Warn("payout: Stripe refused the transfer for good; the money is back in available and the payee blocked",
			"key", key, "code", code)
		if err := settleFailed(ctx, r.db, p, code, now, func(ctx context.Context) error { return r.step(ctx, StepCommit, p.ID) }); err != nil {
			return gone(err)
		}
		r.m.payout(EventFailed)
		r.m.failure(code)
		return outFailed, nil
	case spent:
		r.m.attempt(attemptSpent)
		next := now.Add(r.cfg.backoff(p.Attempts))
		log.Warn("payout: Stripe refused after execution began; the key is spent, a new one after the backoff",
			"key", key, "code", code, "next_attempt_at", next, "error", err)
		return outRetrying, recordSpent(ctx, r.db, p, code, next, now)
	default:
		r.m.attempt(attemptUnanswered)
		log.Warn("payout: no answer from Stripe; the next run sends the same key", "key", key, "error", err)
		return outRetrying, recordUnanswered(ctx, r.db, p, code, now)
	}
}

// withdraw settles a payout no request was sent for whose payee became
// ineligible after it was created: failed when the payee is blocked (its
// account refused or was deauthorized), canceled otherwise.
func (r *Runner) withdraw(ctx context.Context, p *model.Payout, payee payeeState, log *slog.Logger) (outcome, error) {
	now := r.cfg.Now()
	if payee.BlockedReason != nil {
		if err := settleFailed(ctx, r.db, p, *payee.BlockedReason, now, func(context.Context) error { return nil }); err != nil {
			return gone(err)
		}
		log.Info("payout: payee blocked before the first request; failed, money back in available", "reason", *payee.BlockedReason)
		r.m.payout(EventFailed)
		r.m.failure(*payee.BlockedReason)
		return outFailed, nil
	}
	if err := cancelPayout(ctx, r.db, p, now); err != nil {
		return gone(err)
	}
	log.Info("payout: payee no longer eligible before the first request; canceled, money back in available")
	r.m.payout(EventCanceled)
	return outCanceled, nil
}

// paid settles p with tr.
func (r *Runner) paid(ctx context.Context, p *model.Payout, tr Transfer, o outcome, log *slog.Logger) (outcome, error) {
	err := settlePaid(ctx, r.db, p, tr, r.cfg.Now(), func(ctx context.Context) error { return r.step(ctx, StepCommit, p.ID) })
	if err != nil {
		return gone(err)
	}
	log.Info("payout: paid", "transfer", tr.ID, "amount_cents", p.AmountCents, "currency", p.Currency, "adopted", o == outAdopted)
	r.m.payout(EventPaid)
	return o, nil
}

// pick returns the transfer of found that pays p. More than one is a
// duplicate transfer, which must never happen: it is logged as an error
// (reconcile reports the extra) and the first is adopted.
func (r *Runner) pick(found []Transfer, p *model.Payout, account string, log *slog.Logger) (Transfer, bool) {
	var ok []Transfer
	for _, t := range found {
		if matches(t, p, account) {
			ok = append(ok, t)
		} else {
			log.Error("payout: a transfer in the payout's group does not match it", "transfer", t.ID,
				"amount", t.Amount, "currency", t.Currency, "destination", t.Destination)
		}
	}
	if len(ok) > 1 {
		log.Error("payout: more than one transfer in the payout's group", "transfers", len(ok))
	}
	if len(ok) == 0 {
		return Transfer{}, false
	}
	return ok[len(ok)-1], true // Stripe lists newest first: adopt the oldest
}

// matches reports whether t is the transfer of p to account.
func matches(t Transfer, p *model.Payout, account string) bool {
	return t.ID != "" && t.Amount == p.AmountCents && t.Currency == p.Currency && t.TransferGroup == p.TransferGroup &&
		(t.Destination == "" || account == "" || t.Destination == account)
}

// gone turns errGone into outGone without an error.
func gone(err error) (outcome, error) {
	if errors.Is(err, errGone) {
		return outGone, nil
	}
	return outRetrying, err
}
