package config

import (
	"errors"
	"strings"

	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/streams"
)

// ParseReconcile maps the environment onto reconcile.Settings, the settings
// of missed-event recovery (the one-shot `paystream reconcile` command and
// the processor's periodic mode); the defaults and rules are reconcile's.
// STRIPE_SECRET_KEY is required when needKey is true (the reconcile command)
// or when the periodic mode is on; otherwise it may stay unset.
func ParseReconcile(p *Parser, needKey bool) reconcile.Settings {
	s := reconcile.Settings{
		APIBase:           p.URL("STRIPE_API_BASE", stripeclient.DefaultAPIBase, "https", "http"),
		MaxNetworkRetries: p.Int("STRIPE_MAX_NETWORK_RETRIES", stripeclient.DefaultMaxNetworkRetries, 0, stripeclient.MaxNetworkRetries),
		Interval:          p.Duration("RECONCILE_INTERVAL", 0, 0, reconcile.MaxInterval),
		Window:            p.Duration("RECONCILE_WINDOW", reconcile.DefaultWindow, reconcile.MinWindow, reconcile.MaxWindow),
		Endpoint:          p.String("RECONCILE_ENDPOINT", streams.DefaultEndpoint),
	}
	key, set := p.Lookup("STRIPE_SECRET_KEY")
	badKey := set && !validSecretKey(key)
	if badKey {
		// The value is a secret: never echo it, not even in part.
		p.Fail("STRIPE_SECRET_KEY", "", "must be a Stripe secret key sk_test_…/sk_live_… or a restricted key rk_test_…/rk_live_… (a publishable pk_… or webhook whsec_… secret does not work)")
	} else {
		s.SecretKey = key
	}
	for _, err := range unjoin(s.Validate(needKey)) {
		var se *reconcile.SettingError
		switch {
		case !errors.As(err, &se):
			p.errs = append(p.errs, err)
		case badKey && se.Var == "STRIPE_SECRET_KEY":
			// Already reported: the key is there but malformed.
		default:
			p.Fail(se.Var, se.Value, se.Reason)
		}
	}
	return s
}

// unjoin returns the errors errors.Join joined into err (err itself when it
// is not a join, none when it is nil).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// validSecretKey checks the shape of a Stripe API key so a pasted publishable
// key or webhook secret fails at start-up rather than as a 401 later.
func validSecretKey(k string) bool {
	ok := false
	for _, prefix := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if strings.HasPrefix(k, prefix) && len(k) > len(prefix) {
			ok = true
		}
	}
	return ok && !strings.ContainsAny(k, " \t\r\n,")
}
