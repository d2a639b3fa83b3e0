package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"
)

// JSON is a JSON document stored in a jsonb column as it came. bun would
// write a `type:jsonb` field through encoding/json and then its dialect's
// JSON literal, which re-reads the document byte by byte and turns the text
// `\\u0000` (an escaped backslash before "u0000", which a buyer can type)
// into a real \u0000 escape that jsonb refuses: a paid checkout was
// dead-lettered for its buyer's name. JSON writes the document's own bytes
// instead, so jsonb parses exactly what Stripe signed.
//
// The one change is forced by jsonb: it cannot hold the NUL character or a
// lone UTF-16 surrogate, so such an escape (\u0000, \ud83d without its low
// half) is stored as its six characters of text (\\u0000). Every other
// document is stored jsonb-equal to its bytes.
type JSON json.RawMessage

// errRawNUL is a document holding a NUL byte, which no valid JSON does and a
// SQL literal cannot carry.
var errRawNUL = errors.New("model.JSON: the document holds a NUL byte")

// AppendQuery writes j as a SQL string literal of its bytes (nil is NULL).
// Only a quote is doubled: bun's Postgres dialect relies on
// standard_conforming_strings (on since Postgres 9.1), under which a
// backslash in a literal is an ordinary character, so jsonb sees the
// document's escapes as they are.
func (j JSON) AppendQuery(_ schema.QueryGen, b []byte) ([]byte, error) {
	if j == nil {
		return dialect.AppendNull(b), nil
	}
	if bytes.IndexByte(j, 0) >= 0 {
		return nil, errRawNUL
	}
	b = slices.Grow(b, len(j)+2)
	b = append(b, '\'')
	// Runs without a quote or backslash are copied whole: most of a document
	// (the processor writes every event's, ~2.4 KB). The next quote and the
	// next backslash are each searched for again only once passed, so every
	// byte is scanned at most twice whatever the document.
	quote, backslash := -1, -1
	for i := 0; i < len(j); i++ {
		if quote < i {
			quote = indexFrom(j, i, '\'')
		}
		if backslash < i {
			backslash = indexFrom(j, i, '\\')
		}
		if k := min(quote, backslash); k > i {
			b = append(b, j[i:k]...)
			if i = k; i == len(j) {
				break
			}
		}
		switch c := j[i]; c {
		case '\'':
			b = append(b, '\'', '\'')
		case '\\':
			// An escape is copied whole, so its second character is never
			// taken for the start of another.
			if n := storableEscape(j[i:]); n > 0 {
				b = append(b, j[i:i+n]...)
				i += n - 1
				continue
			}
			if i+1 < len(j) && j[i+1] == 'u' {
				b = append(b, '\\', '\\') // \uXXXX that jsonb refuses: keep it as text
				continue
			}
			b = append(b, '\\')
			if i+1 < len(j) && j[i+1] != '\'' && j[i+1] != 0 {
				i++
				b = append(b, j[i])
			}
		default:
			b = append(b, c)
		}
	}
	return append(b, '\''), nil
}

// indexFrom returns the index of the first c in s at or after from, or
// len(s).
func indexFrom(s []byte, from int, c byte) int {
	if k := bytes.IndexByte(s[from:], c); k >= 0 {
		return from + k
	}
	return len(s)
}

// storableEscape returns the length of the \uXXXX escape at the start of s
// (12 for a surrogate pair, 6 otherwise), or 0 when s does not start with a
// \u escape or its character is one jsonb cannot hold: NUL or a surrogate
// without its other half.
func storableEscape(s []byte) int {
	r, ok := hex4(s)
	switch {
	case !ok || r == 0:
		return 0
	case r >= 0xd800 && r < 0xdc00: // high surrogate: storable only with a low one after it
		if lo, ok := hex4(s[6:]); ok && lo >= 0xdc00 && lo < 0xe000 {
			return 12
		}
		return 0
	case r >= 0xdc00 && r < 0xe000: // a low surrogate on its own
		return 0
	}
	return 6
}

// hex4 reads the code unit of a \uXXXX escape at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Scan reads a json or jsonb column.
func (j *JSON) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case []byte:
		*j = append((*j)[:0:0], v...)
	case string:
		*j = JSON(v)
	default:
		return fmt.Errorf("model.JSON: cannot scan %T", src)
	}
	return nil
}

// MarshalJSON embeds the document as it is, like json.RawMessage.
func (j JSON) MarshalJSON() ([]byte, error) { return json.RawMessage(j).MarshalJSON() }

// UnmarshalJSON keeps a copy of the document, like json.RawMessage.
func (j *JSON) UnmarshalJSON(b []byte) error { return (*json.RawMessage)(j).UnmarshalJSON(b) }

var (
	_ schema.QueryAppender = JSON(nil)
	_ json.Marshaler       = JSON(nil)
)
