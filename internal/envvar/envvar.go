// Package envvar holds the one error of paystream's configuration: a setting
// that is wrong, named by the environment variable that sets it. The
// internal/config parsers return it for a value they cannot read, and the
// packages whose Config rules they apply (processor, reconcile, edge) return
// it for a rule a setting breaks, so an operator reads every problem in the
// same words and each variable is reported once.
package envvar

import "fmt"

// Error is a bad setting. Its message names the variable.
type Error struct {
	Name   string // the variable, e.g. EDGE_ADDR
	Value  string // what was set (never printed for secrets)
	Reason string // what is wrong, in words an operator can act on
	Secret bool   // true when Value must not be printed
}

func (e *Error) Error() string {
	if e.Secret || e.Value == "" {
		return fmt.Sprintf("config: %s: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("config: %s=%q: %s", e.Name, e.Value, e.Reason)
}

// New returns the Error of variable name set to value.
func New(name, value, reason string) *Error { return &Error{Name: name, Value: value, Reason: reason} }
