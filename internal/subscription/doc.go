// Package subscription is paystream's memberships: a plan sold through a
// Stripe subscription grants access to a creator's (or an organization's)
// content while Stripe says it is paid, and every paid invoice is split like
// a purchase.
//
// The pieces, one file each:
//   - decode.go, objects.go: the Stripe events the family reads, in both
//     payload shapes (API 2023-10-16 and 2025-03-31 and later);
//   - order.go: the ordering rule, Apply, a pure function: an event older
//     than the last applied one never overwrites it, a tie or an undecidable
//     payload is settled by fetching the subscription from Stripe (Fetcher);
//   - access.go: AccessUntil, the one access rule, also pure;
//   - store.go, invoice.go, reversal.go: the writes, taking bun.IDB so they
//     run inside the processor's event transaction;
//   - access_query.go: the access check of a customer and a content item
//     through a purchase or a subscription, one statement;
//   - family.go, announce.go, ledger.go, outbox.go, metrics.go: the
//     processor's subscription family (its routes in the eventtx route
//     table, the shared types the purchase family hands over), the
//     subscriptions.* events, the invoices' ledger postings, the metrics;
//   - fetch_stripe.go: the Fetcher on Stripe's API (NewFetcher);
//   - expiry.go, sweeper.go, gauges.go: the end of access announced once,
//     by the event that ends it or by the sweeper, and the gauges;
//   - config.go, seed.go: the settings, and the demo plans of `paystream
//     seed`.
//
// docs/subscriptions.md describes the model, the rules and how plans are
// managed.
package subscription
