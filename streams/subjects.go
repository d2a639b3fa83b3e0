package streams

import (
	"fmt"
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

// ValidEndpoint reports whether name can be an endpoint name: one subject
// token, lower case, `^[a-z0-9][a-z0-9_-]{0,62}$`. (A loop, not a regexp:
// the edge checks every request, and the regexp was 5 % of its CPU.)
func ValidEndpoint(name string) bool {
	if len(name) < 1 || len(name) > 63 || !lowerDigit(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !lowerDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ValidEventID reports whether id is shaped like a Stripe event id,
// `^evt_[A-Za-z0-9_]{1,250}$`: it becomes Nats-Msg-Id and a header, so it is
// bounded and free of separators, quotes and escapes (it is safe in JSON and
// in a header as is). A loop, not a regexp, for the same reason as above.
func ValidEventID(id string) bool {
	if len(id) < 5 || len(id) > 254 || id[:4] != "evt_" {
		return false
	}
	for i := 4; i < len(id); i++ {
		if c := id[i]; !lowerDigit(c) && !('A' <= c && c <= 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// ValidEventType reports whether t is shaped like a Stripe event type and so
// is safe inside a subject: dot-separated lower-case words
// (checkout.session.completed, v1.billing.meter.error_report_triggered),
// `^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){0,7}$`.
func ValidEventType(t string) bool {
	words, n := 1, 0 // words so far, length of the current one
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case lowerDigit(c) || c == '_':
			if n++; n > 64 {
				return false
			}
		case c == '.':
			if n == 0 || words == 8 {
				return false
			}
			words, n = words+1, 0
		default:
			return false
		}
	}
	return n > 0
}

func lowerDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

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
