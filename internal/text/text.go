// Package text is the one rule for text that comes from outside (a path
// segment, a field of a request body, a value of Stripe metadata) and is
// stored or used as a key: printable UTF-8 of bounded length. The purchase
// API and the processor both apply it, so a value one accepts the other
// accepts too, and a value neither should store never reaches Postgres,
// which would refuse it with an error that looks like an outage.
package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxCustomerID is the longest customer id, in bytes.
const MaxCustomerID = 255

// Problem says what is wrong with s as text of at most max bytes, or ""
// when nothing is. Text is valid UTF-8 whose every character is printable
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space), so it refuses NUL and every other control character, line
// and paragraph separators, invisible format characters (a right-to-left
// override can make one id look like another) and unassigned code points.
// It also refuses U+FFFD: a JSON decoder puts it in place of bytes that
// were not UTF-8 and of lone surrogate escapes, so in an identifier it
// stands for text that was damaged before it arrived. The six characters
// \u0000 are printable text like any other.
func Problem(s string, max int) string {
	if !utf8.ValidString(s) {
		i := invalidAt(s)
		return fmt.Sprintf("must be UTF-8 text (byte 0x%02x at offset %d is not)", s[i], i)
	}
	if len(s) > max {
		return fmt.Sprintf("must be at most %d bytes of UTF-8", max)
	}
	for i, r := range s {
		if r < utf8.RuneSelf && r >= 0x20 && r < 0x7f {
			continue // printable ASCII: the usual case, without the table lookup
		}
		if r == utf8.RuneError {
			return fmt.Sprintf("must not contain U+FFFD at offset %d (the replacement for bytes that were not text)", i)
		}
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("must be printable text (U+%04X at offset %d is a control or invisible character)", r, i)
		}
	}
	return ""
}

// CustomerID says what is wrong with a customer id, or "": one is
// required, is text of at most MaxCustomerID bytes, and neither starts nor
// ends with a space (" u1" and "u1" would be two customers that look
// alike).
func CustomerID(s string) string {
	if s == "" {
		return "is required"
	}
	if why := Problem(s, MaxCustomerID); why != "" {
		return why
	}
	if strings.TrimSpace(s) != s {
		return "must not start or end with spaces"
	}
	return ""
}

// invalidAt is the offset of the first byte of s that does not start a
// valid UTF-8 sequence.
func invalidAt(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}
