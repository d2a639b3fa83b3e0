package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/envvar"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/streams"
)

func TestSettingsDefaults(t *testing.T) {
	s := Settings{}
	s.setDefaults()
	want := Settings{APIBase: stripeclient.DefaultAPIBase, Window: DefaultWindow, Endpoint: streams.DefaultEndpoint}
	if s != want {
		t.Errorf("defaults = %+v, want %+v", s, want)
	}
	if err := (Settings{}).Validate(false); err != nil {
		t.Errorf("zero settings without the periodic mode: %v", err)
	}
	// Set fields are kept.
	set := Settings{APIBase: "http://127.0.0.1:12111", Window: time.Hour, Endpoint: "booking", MaxNetworkRetries: 2}
	got := set
	got.setDefaults()
	if got != set {
		t.Errorf("setDefaults overwrote set fields: %+v", got)
	}
}

func TestSettingsValidate(t *testing.T) {
	const key = "sk_test_x"
	for _, tc := range []struct {
		name    string
		s       Settings
		needKey bool
		want    []string // the variables the error names, in order; nil = valid
	}{
		{"off, no key", Settings{}, false, nil},
		{"command without key", Settings{}, true, []string{"STRIPE_SECRET_KEY"}},
		{"periodic without key", Settings{Interval: time.Hour}, false, []string{"STRIPE_SECRET_KEY"}},
		{"periodic", Settings{SecretKey: key, Interval: time.Hour}, false, nil},
		{"interval under a minute", Settings{SecretKey: key, Interval: 10 * time.Second}, false, []string{"RECONCILE_INTERVAL"}},
		{"negative interval", Settings{SecretKey: key, Interval: -time.Minute}, false, []string{"RECONCILE_INTERVAL"}},
		{"interval over a day", Settings{SecretKey: key, Interval: 25 * time.Hour, Window: 30 * time.Hour}, false, []string{"RECONCILE_INTERVAL"}},
		{"interval beyond window", Settings{SecretKey: key, Interval: 2 * time.Hour, Window: time.Hour}, false, []string{"RECONCILE_INTERVAL"}},
		{"window beyond Stripe's 30 days", Settings{Window: MaxWindow + time.Hour}, false, []string{"RECONCILE_WINDOW"}},
		{"window under a minute", Settings{Window: time.Second}, false, []string{"RECONCILE_WINDOW"}},
		{"bad endpoint", Settings{Endpoint: "Booking.x"}, false, []string{"RECONCILE_ENDPOINT"}},
		{"retries out of range", Settings{MaxNetworkRetries: 11}, false, []string{"STRIPE_MAX_NETWORK_RETRIES"}},
		{"every problem at once", Settings{Interval: 10 * time.Second, Endpoint: "A", MaxNetworkRetries: -1}, true,
			[]string{"RECONCILE_INTERVAL", "RECONCILE_ENDPOINT", "STRIPE_MAX_NETWORK_RETRIES", "STRIPE_SECRET_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate(tc.needKey)
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var se *envvar.Error
					if !errors.As(e, &se) {
						t.Fatalf("%v is not an *envvar.Error", e)
					}
					if !strings.Contains(se.Error(), se.Name) {
						t.Errorf("%q does not name %s", se.Error(), se.Name)
					}
					got = append(got, se.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Validate names %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}

func TestSettingsStripe(t *testing.T) {
	s := Settings{SecretKey: "sk_test_x", APIBase: "http://fake", MaxNetworkRetries: 3, Interval: time.Hour}
	if got, want := s.Stripe(), (stripeclient.Config{Key: "sk_test_x", APIBase: "http://fake", MaxNetworkRetries: 3}); got != want {
		t.Errorf("Stripe() = %+v, want %+v", got, want)
	}
}
