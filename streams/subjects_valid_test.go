package streams

import (
	"regexp"
	"strings"
	"testing"
)

// The validators accept exactly the languages of the regular expressions
// they replaced.
func TestValidatorsMatchTheirRegexps(t *testing.T) {
	endpointRe := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	eventTypeRe := regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){0,7}$`)
	eventIDRe := regexp.MustCompile(`^evt_[A-Za-z0-9_]{1,250}$`)
	w64, w65 := strings.Repeat("a", 64), strings.Repeat("a", 65)
	cases := []string{
		"", "a", "default", "booking", "_x", "-x", "x-", "x_y", "A", "ü", "a b", "a.b", strings.Repeat("b", 63), strings.Repeat("b", 64),
		"checkout.session.completed", "v1.billing.meter.error_report_triggered", ".", "a.", ".a", "a..b", "a.b.c.d.e.f.g.h",
		"a.b.c.d.e.f.g.h.i", w64, w65, w64 + "." + w64, w64 + "." + w65, "charge.refunded\n", "Charge.refunded", "a-b.c",
		"stripe.events.>", "a*", "0.1.2", "_._",
		"evt_", "evt_1", "evt_1NxP0aLkdIwHu7ixZ0d2c3Yq", "evt__", "EVT_1", "evt-1", "evt_1 ", "evt_ü", "evt_1\n",
		"evt_" + strings.Repeat("a", 249), "evt_" + strings.Repeat("Z", 250), "evt_" + strings.Repeat("9", 251),
		"xevt_1", "ev_1", "evt_a.b", "evt_\"", "evt_\\",
	}
	// Every string of up to three characters over a small alphabet.
	alpha := []string{"a", "Z", "0", "_", "-", ".", " "}
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		cases = append(cases, prefix)
		if n == 0 {
			return
		}
		for _, c := range alpha {
			gen(prefix+c, n-1)
		}
	}
	gen("", 3)
	for _, c := range cases[:len(cases):len(cases)] { // and each behind the evt_ prefix
		cases = append(cases, "evt_"+c)
	}
	for _, c := range cases {
		if got, want := ValidEndpoint(c), endpointRe.MatchString(c); got != want {
			t.Errorf("ValidEndpoint(%q) = %v, regexp says %v", c, got, want)
		}
		if got, want := ValidEventType(c), eventTypeRe.MatchString(c); got != want {
			t.Errorf("ValidEventType(%q) = %v, regexp says %v", c, got, want)
		}
		if got, want := ValidEventID(c), eventIDRe.MatchString(c); got != want {
			t.Errorf("ValidEventID(%q) = %v, regexp says %v", c, got, want)
		}
	}
}

func FuzzValidEventType(f *testing.F) {
	eventTypeRe := regexp.MustCompile(`^[a-z0-9_]{1,64}(\.[a-z0-9_]{1,64}){0,7}$`)
	endpointRe := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	eventIDRe := regexp.MustCompile(`^evt_[A-Za-z0-9_]{1,250}$`)
	for _, s := range []string{"checkout.session.completed", "default", "a..b", "", "evt_1NxP0aLkdIwHu7ix", "evt_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidEventType(s) != eventTypeRe.MatchString(s) {
			t.Errorf("ValidEventType(%q) disagrees with the regexp", s)
		}
		if ValidEndpoint(s) != endpointRe.MatchString(s) {
			t.Errorf("ValidEndpoint(%q) disagrees with the regexp", s)
		}
		if ValidEventID(s) != eventIDRe.MatchString(s) {
			t.Errorf("ValidEventID(%q) disagrees with the regexp", s)
		}
	})
}
