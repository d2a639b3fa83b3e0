package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/stripefixture"
)

// lifecycleSequence is the `paystream send` sequence of a whole membership.
const lifecycleSequence = "subscription-lifecycle"

// subscriptionFlags adds the flags of the subscription events to fs.
func (o *sendOptions) subscriptionFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.subscription, "subscription", "", "subscription id, sub_… (default: a new one; pass the one printed before to send its next event)")
	fs.StringVar(&o.plan, "plan", demo.CreatorPlanID, "subscription events: metadata planId (the demo creator plan; "+demo.OrganizationPlanID+" is the organization's)")
	fs.StringVar(&o.invoice, "invoice", "", "invoice.* / invoice_payment.paid: invoice id, in_… (default: a new one)")
	fs.StringVar(&o.status, "status", "", "customer.subscription.*: the status it shows (default from the event type: active, canceled, paused or trialing)")
	fs.StringVar(&o.billingReason, "billing-reason", "", "invoice.*: subscription_create (the signup) or subscription_cycle (a renewal, the default)")
	fs.DurationVar(&o.every, "every", 300*time.Millisecond, lifecycleSequence+": wait between its events, as Stripe spaces them (0: none; the processor's workers may then apply neighbours in either order, which the ordering rule absorbs but which can skip an intermediate state's event)")
}

// memberAmount is the subscription's price: --amount when given, else the
// demo plan's.
func (o sendOptions) memberAmount() int64 {
	if p := demo.PlanPriceCents(o.plan); p > 0 && !o.amountSet {
		return p
	}
	return o.amount
}

// buildMember builds subscription event i of the run: the first names the
// ids given by flags, every further one (--repeat) another subscription.
func (o sendOptions) buildMember(typ string, i int) ([]byte, sentIDs, error) {
	meta := stripefixture.Meta{EventID: o.eventID, Created: time.Now(), APIVersion: o.apiVersion}
	if typ == "invoice_payment.paid" && o.apiVersion == stripefixture.APIVersion {
		meta.APIVersion = stripefixture.InvoicePaymentAPIVersion // the event exists from that version on
	}
	mb := stripefixture.Member{SubscriptionID: o.subscription, InvoiceID: o.invoice, PaymentIntentID: o.paymentIntent,
		ChargeID: o.charge, CustomerID: o.customer, PlanID: o.plan, OrganizationID: o.org, Amount: o.memberAmount(),
		Currency: o.currency, Status: o.status, BillingReason: o.billingReason}
	if i > 0 {
		meta.EventID, mb.SubscriptionID, mb.InvoiceID, mb.PaymentIntentID, mb.ChargeID = "", "", "", "", ""
	}
	body, ids, err := stripefixture.MemberEvent(typ, meta, mb)
	return body, sentIDs{event: ids.Event, names: idList("subscription", ids.Subscription, "invoice", ids.Invoice,
		"payment_intent", ids.PaymentIntent, "charge", ids.Charge)}, err
}

// sendLifecycle posts a membership's whole life (stripefixture.
// MembershipLifecycle) to the edge, one event after the other, each only
// after the one before was accepted, and says what each one tells.
func (o sendOptions) sendLifecycle(ctx context.Context, getenv config.Getenv, stdout io.Writer) error {
	secret, err := o.resolveSecret(getenv)
	if err != nil {
		return err
	}
	sub, steps, err := stripefixture.MembershipLifecycle(stripefixture.Membership{SubscriptionID: o.subscription,
		CustomerID: o.customer, PlanID: o.plan, OrganizationID: o.org, Amount: o.memberAmount(), Currency: o.currency,
		Now: time.Now()})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintf(stdout, "membership %s of %s to plan %s, %d %s a month\n", sub, o.customer, o.plan, o.memberAmount(), o.currency)
	client := &http.Client{Timeout: o.timeout}
	for i, st := range steps {
		if i > 0 && o.every > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(o.every):
			}
		}
		status, answer, err := post(ctx, client, o.url, st.Body, stripefixture.Sign(st.Body, secret, time.Now()))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%2d/%d %-30s %s -> %d  # %s\n", i+1, len(steps), st.Type, st.EventID, status, st.What)
		if status != http.StatusOK {
			return fmt.Errorf("send: %s %s was not accepted (%d %s); the sequence stops there", st.Type, st.EventID, status,
				strings.TrimSpace(answer))
		}
	}
	return nil
}
