// Package config reads paystream's environment into typed, validated settings.
//
// Every binary reads its environment once, at start-up, through a Parser,
// which collects every bad value, each named by its variable
// (*envvar.Error); the process stops before it connects to anything and
// prints them all. The parsers only map variables onto the packages' own
// configs: the defaults and rules live with those packages. This package
// holds the Parser, the settings every service shares and the edge's;
// apiconfig and processorconfig hold the purchase API's and the processor
// group's, apart so the edge binary links neither Postgres nor Stripe.
// Nothing here is global: callers pass a getenv function (os.Getenv in main,
// a map in tests).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/envvar"
)

// Getenv looks up one environment variable; "" means unset.
type Getenv func(string) string

// MapEnv adapts a map to Getenv, for tests and the load tool.
func MapEnv(m map[string]string) Getenv {
	return func(k string) string { return m[k] }
}

// Overlay returns getenv with the variables of over set on top: a key of
// over (even with the value "") hides the variable of getenv, every other
// variable reads through. The dev mode and the load tool run the real
// environment with their own choices on top this way.
func Overlay(getenv Getenv, over map[string]string) Getenv {
	return func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}
}

// Parser reads variables and collects the problems it finds, so a caller can
// read a whole struct and check Err once.
type Parser struct {
	getenv   Getenv
	errs     []error
	reported map[string]bool // variables with an error already
}

// NewParser returns a Parser over getenv.
func NewParser(getenv Getenv) *Parser { return &Parser{getenv: getenv, reported: map[string]bool{}} }

// Err returns every problem found so far, joined, or nil.
func (p *Parser) Err() error { return errors.Join(p.errs...) }

// Fail records a problem found by a caller's own validation.
func (p *Parser) Fail(name, value, reason string) { p.record(envvar.New(name, value, reason)) }

// FailSecret records a problem with a secret's variable; the value is never
// printed, not even in part.
func (p *Parser) FailSecret(name, reason string) {
	p.record(&envvar.Error{Name: name, Secret: true, Reason: reason})
}

// Check records the errors a package's Validate returned (one error, or
// several joined). A rule broken by a variable that is already reported is
// left out: a value the Parser could not read was replaced by its default or
// left empty, and the rule would only repeat the problem in other words.
func (p *Parser) Check(err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		var ve *envvar.Error
		switch {
		case err == nil:
		case errors.As(err, &ve) && p.reported[ve.Name]:
		default:
			p.record(err)
		}
	}
}

func (p *Parser) record(err error) {
	var ve *envvar.Error
	if errors.As(err, &ve) {
		p.reported[ve.Name] = true
	}
	p.errs = append(p.errs, err)
}

// Lookup returns the trimmed raw value of name and whether it was set.
func (p *Parser) Lookup(name string) (string, bool) {
	v := strings.TrimSpace(p.getenv(name))
	return v, v != ""
}

// String returns the value of name, or def when unset.
func (p *Parser) String(name, def string) string {
	if v, ok := p.Lookup(name); ok {
		return v
	}
	return def
}

// Int returns the integer value of name, or def; it must lie in [min, max].
func (p *Parser) Int(name string, def, min, max int) int {
	v, ok := p.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.Fail(name, v, "must be a whole number")
		return def
	}
	if n < min || n > max {
		p.Fail(name, v, fmt.Sprintf("must be between %d and %d", min, max))
		return def
	}
	return n
}

// Duration returns the duration value of name (Go syntax: 300s, 2h), or def;
// it must lie in [min, max].
func (p *Parser) Duration(name string, def, min, max time.Duration) time.Duration {
	v, ok := p.Lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.Fail(name, v, "must be a duration such as 30s, 5m or 2h")
		return def
	}
	if d < min || d > max {
		p.Fail(name, v, fmt.Sprintf("must be between %s and %s", min, max))
		return def
	}
	return d
}

// Durations returns a comma-separated list of durations (a backoff schedule),
// or def; each element must be positive.
func (p *Parser) Durations(name string, def []time.Duration) []time.Duration {
	v, ok := p.Lookup(name)
	if !ok {
		return def
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			p.Fail(name, v, "must be a comma-separated list of positive durations such as 1s,5s,30s")
			return def
		}
		out = append(out, d)
	}
	return out
}

// Bool returns the boolean value of name (true/false/1/0), or def.
func (p *Parser) Bool(name string, def bool) bool {
	v, ok := p.Lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.Fail(name, v, "must be true or false")
		return def
	}
	return b
}

// Addr returns a listen address (host:port, host may be empty), or def.
func (p *Parser) Addr(name, def string) string {
	v := p.String(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		p.Fail(name, v, "must be a listen address such as :8080 or 127.0.0.1:8080")
		return def
	}
	return v
}

// URL returns a URL whose scheme is one of schemes, or def.
func (p *Parser) URL(name, def string, schemes ...string) string {
	v := p.String(name, def)
	u, err := url.Parse(v)
	if err != nil || u.Host == "" && u.Path == "" {
		p.Fail(name, redactURL(v), "must be a URL")
		return def
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	p.Fail(name, redactURL(v), "scheme must be one of "+strings.Join(schemes, ", "))
	return def
}

// redactURL hides a password in a URL so it never reaches a log line.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "<unparseable>"
	}
	return u.Redacted()
}
