package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/uptrace/bun/schema"
)

// appendByteByByte is AppendQuery written as one byte at a time: the
// reference the run-copying AppendQuery must equal.
func appendByteByByte(j JSON) ([]byte, error) {
	b := []byte{'\''}
	for i := 0; i < len(j); i++ {
		switch c := j[i]; c {
		case '\'':
			b = append(b, '\'', '\'')
		case 0:
			return nil, errRawNUL
		case '\\':
			if n := storableEscape(j[i:]); n > 0 {
				b = append(b, j[i:i+n]...)
				i += n - 1
				continue
			}
			if i+1 < len(j) && j[i+1] == 'u' {
				b = append(b, '\\', '\\')
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

// AppendQuery copies runs of ordinary bytes whole; whatever the document,
// its literal is the byte-by-byte one (or both fail on a NUL).
func FuzzJSONLiteralCopiesRunsExactly(f *testing.F) {
	for _, s := range []string{``, `{}`, `'`, `\`, `\\`, `\'`, `\u0000`, `\ud83d\ude00`, `\ud83d`, `\udc00x`,
		`a\`, `ab'`, "\x00", "a\x00b", `\\u0000`, `{"name":"O'Brien \"x\" \\ \u00e9 \u0000"}`, `\` + "\x00", `x\'y`} {
		f.Add([]byte(s))
	}
	f.Add(benchDocument())
	f.Fuzz(func(t *testing.T, doc []byte) {
		want, werr := appendByteByByte(JSON(doc))
		got, err := JSON(doc).AppendQuery(schema.QueryGen{}, []byte("prefix"))
		if (werr != nil) != (err != nil) {
			t.Fatalf("error %v, byte by byte %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("literal of %q\n got %q\nwant %q", doc, got, want)
		}
	})
}

// benchDocument is a document of the size and shape of a Stripe checkout
// event: ~2.4 KB of keys, ids and numbers, a quote or escape in a name.
func benchDocument() []byte {
	obj := map[string]any{"id": "evt_1", "object": "event", "type": "checkout.session.completed",
		"customer_details": map[string]any{"name": "Siobh\u00e1n O'Brien", "email": "buyer@example.com"}}
	for i := range 60 {
		obj[fmt.Sprintf("field_%02d", i)] = fmt.Sprintf("cs_test_a1b2c3d4e5f6_%d", i)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkJSONAppendQuery: a checkout-shaped document, and a 64 KB one of
// escaped quotes and unicode escapes, which must stay linear in its size.
func BenchmarkJSONAppendQuery(b *testing.B) {
	escaped := []byte(`{"description":"`)
	for len(escaped) < 64<<10 {
		escaped = append(escaped, `\"caf\u00e9\" `...)
	}
	escaped = append(escaped, `"}`...)
	for _, bc := range []struct {
		name string
		doc  JSON
	}{{"checkout", JSON(benchDocument())}, {"escaped-64KB", JSON(escaped)}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 2*len(bc.doc))
			b.SetBytes(int64(len(bc.doc)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = bc.doc.AppendQuery(schema.QueryGen{}, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
