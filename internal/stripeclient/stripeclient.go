// Package stripeclient holds what paystream's two clients of the Stripe API
// share: the purchase API (creating Checkout Sessions) and reconcile
// (listing events) read the same STRIPE_API_BASE and
// STRIPE_MAX_NETWORK_RETRIES, so their defaults and bounds live here once.
package stripeclient

import "github.com/stripe/stripe-go/v76"

const (
	// DefaultAPIBase is Stripe's API; STRIPE_API_BASE overrides it for tests
	// (stripe-mock, a local fake of the Events API) and for egress proxies.
	DefaultAPIBase = stripe.APIURL
	// DefaultMaxNetworkRetries is how often stripe-go itself retries a
	// request that failed in a retryable way (connection errors, 5xx, 409,
	// and 429 answered with Stripe-Should-Retry: true).
	DefaultMaxNetworkRetries = 5
	// MaxNetworkRetries bounds STRIPE_MAX_NETWORK_RETRIES.
	MaxNetworkRetries = 10
)
