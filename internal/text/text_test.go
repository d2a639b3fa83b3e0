package text_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/internal/text"
)

func TestProblem(t *testing.T) {
	tests := []struct {
		name, s string
		max     int
		ok      bool
		says    string // part of the answer when not ok
	}{
		{"ascii", "user_1", 10, true, ""},
		{"spaces inside", "Jo Q Ray", 10, true, ""},
		{"looks like an escape", `\u0000`, 10, true, ""},
		{"quotes and backslashes", `it's "q" \\`, 20, true, ""},
		{"accents, symbols, emoji", "é☃😀", 20, true, ""},
		{"at the limit", strings.Repeat("é", 5), 10, true, ""},
		{"empty", "", 10, true, ""},
		{"over the limit in bytes", strings.Repeat("é", 6), 10, false, "at most 10 bytes"},
		{"NUL", "a\x00b", 10, false, "U+0000 at offset 1"},
		{"tab", "a\tb", 10, false, "U+0009"},
		{"newline", "a\n", 10, false, "U+000A"},
		{"delete", "a\x7f", 10, false, "U+007F"},
		{"C1 control", "a\u0085", 10, false, "U+0085"},
		{"line separator", "a\u2028", 10, false, "U+2028"},
		{"right-to-left override", "a\u202e", 10, false, "U+202E"},
		{"zero width space", "a\u200b", 10, false, "U+200B"},
		{"no-break space", "a\u00a0b", 10, false, "U+00A0"},
		{"private use", "\ue000", 10, false, "U+E000"},
		{"replacement character", "a\ufffd", 10, false, "U+FFFD"},
		{"invalid byte", "ab\xff", 10, false, "0xff at offset 2"},
		{"truncated sequence", "a\xc3", 10, false, "0xc3 at offset 1"},
		{"encoded surrogate", "a\xed\xa0\x80", 10, false, "0xed at offset 1"},
		{"overlong NUL", "\xc0\x80", 10, false, "0xc0 at offset 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := text.Problem(tt.s, tt.max)
			if (got == "") != tt.ok || !strings.Contains(got, tt.says) {
				t.Errorf("Problem(%q, %d) = %q, want ok=%v mentioning %q", tt.s, tt.max, got, tt.ok, tt.says)
			}
		})
	}
}

func TestCustomerID(t *testing.T) {
	tests := []struct{ s, says string }{
		{"user_1", ""},
		{`\u0000`, ""},
		{strings.Repeat("x", text.MaxCustomerID), ""},
		{"", "required"},
		{" u", "spaces"},
		{"u ", "spaces"},
		{"\tu", "U+0009"},
		{"a\x00", "U+0000"},
		{strings.Repeat("x", text.MaxCustomerID+1), "at most 255 bytes"},
	}
	for _, tt := range tests {
		got := text.CustomerID(tt.s)
		if (got == "") != (tt.says == "") || !strings.Contains(got, tt.says) {
			t.Errorf("CustomerID(%q) = %q, want %q", tt.s, got, tt.says)
		}
	}
}

// Whatever Problem accepts is printable UTF-8 within the bound, and
// whatever it refuses is not: the rule is exactly its documentation, for
// random strings of bytes, of code points and of printable text.
func TestProblemProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		s := randomString(rng, i%3)
		max := 1 + rng.IntN(40)
		want := utf8.ValidString(s) && len(s) <= max && !strings.ContainsFunc(s, func(r rune) bool {
			return !unicode.IsPrint(r) || r == utf8.RuneError
		})
		if got := text.Problem(s, max); (got == "") != want {
			t.Fatalf("Problem(%q, %d) = %q, want ok=%v", s, max, got, want)
		}
	}
}

// Text Problem accepts is stored by Postgres as it is and read back equal,
// as a bound parameter and as a literal Bun formats: nothing it accepts
// can make the database refuse the value.
func TestAcceptedTextRoundTripsThroughPostgres(t *testing.T) {
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	n := 0
	for n < 2000 {
		s := randomString(rng, 2)
		if text.Problem(s, 1<<10) != "" {
			continue
		}
		n++
		var viaParam, viaBun string
		if err := bdb.DB.QueryRowContext(ctx, "SELECT $1::text", s).Scan(&viaParam); err != nil {
			t.Fatalf("%q as a parameter: %v", s, err)
		}
		if err := bdb.NewRaw("SELECT ?::text", s).Scan(ctx, &viaBun); err != nil {
			t.Fatalf("%q through Bun: %v", s, err)
		}
		if viaParam != s || viaBun != s {
			t.Fatalf("%q came back as %q (parameter) and %q (Bun)", s, viaParam, viaBun)
		}
	}
}

// randomString: kind 0 random bytes, 1 random code points, 2 mostly
// printable text with an occasional hostile character.
func randomString(rng *rand.Rand, kind int) string {
	n := rng.IntN(24)
	var b strings.Builder
	for range n {
		switch kind {
		case 0:
			b.WriteByte(byte(rng.IntN(256)))
		case 1:
			b.WriteRune(rune(rng.IntN(0x110000)))
		default:
			pool := []rune{'a', 'Z', '0', ' ', '\'', '"', '\\', 'u', '{', '%', ';', 'é', '☃', '😀', '中', '\u0301'}
			if rng.IntN(50) == 0 {
				pool = []rune{0, '\t', '\u2028', '\u202e', '\ufffd', '\u0085'}
			}
			b.WriteRune(pool[rng.IntN(len(pool))])
		}
	}
	return b.String()
}
