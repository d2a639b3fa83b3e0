package streams

import (
	"fmt"
	"regexp"
)

// Subject prefixes. Each ends with a dot; the rest of a subject is built by
// the helpers below so that no outside input can add wildcards or tokens.
const (
	EventsSubjectPrefix    = "stripe.events."
	DLQSubjectPrefix       = "stripe.dlq."
	PurchasesSubjectPrefix = "purchases."
)

// DefaultEndpoint names the endpoint of the plain /webhooks/stripe route.
const DefaultEndpoint = "default"

var (
	// endpointRe: an endpoint name is one subject token, lower case.
	endpointRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	// eventTypeRe: Stripe event types are dot-separated lower-case words
	// (checkout.session.completed, v1.billing.meter.error_report_triggered).
	eventTypeRe = regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){0,7}$`)
)

// ValidEndpoint reports whether name can be an endpoint name.
func ValidEndpoint(name string) bool { return endpointRe.MatchString(name) }

// ValidEventType reports whether t is shaped like a Stripe event type and so
// is safe inside a subject.
func ValidEventType(t string) bool { return eventTypeRe.MatchString(t) }

// EventSubject returns stripe.events.<endpoint>.<event type>.
func EventSubject(endpoint, eventType string) (string, error) {
	if !ValidEndpoint(endpoint) {
		return "", fmt.Errorf("endpoint name %q is not a valid subject token", endpoint)
	}
	if !ValidEventType(eventType) {
		return "", fmt.Errorf("event type %q is not a valid Stripe event type", eventType)
	}
	return EventsSubjectPrefix + endpoint + "." + eventType, nil
}

// DLQSubject returns stripe.dlq.<endpoint>.<event type>.
func DLQSubject(endpoint, eventType string) (string, error) {
	s, err := EventSubject(endpoint, eventType)
	if err != nil {
		return "", err
	}
	return DLQSubjectPrefix + s[len(EventsSubjectPrefix):], nil
}

// PurchaseSubject returns purchases.<kind>, e.g. purchases.completed.
func PurchaseSubject(kind string) string { return PurchasesSubjectPrefix + kind }
