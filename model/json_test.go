package model_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// viaJSON and viaBun are the same row written two ways: through model.JSON,
// and through bun's own jsonb path (encoding/json, then the dialect).
type viaJSON struct {
	bun.BaseModel `bun:"table:json_probe"`
	ID            int        `bun:"id,pk"`
	Doc           model.JSON `bun:"doc"`
}

type viaBun struct {
	bun.BaseModel `bun:"table:json_probe"`
	ID            int             `bun:"id,pk"`
	Doc           json.RawMessage `bun:"doc,type:jsonb"`
}

// TestJSONStoresWhatBunsJSONBPathStores: every document, including quotes,
// backslashes, unicode escapes and the \u0000 jsonb rejects, is stored as
// the same jsonb value both ways, multi-row too, and reads back.
func TestJSONStoresWhatBunsJSONBPathStores(t *testing.T) {
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := bdb.ExecContext(ctx, `CREATE TEMP TABLE json_probe (id int PRIMARY KEY, doc jsonb)`); err != nil {
		t.Fatal(err)
	}
	docs := []string{
		`{"id":"evt_1","object":"event"}`,
		`{"quote":"it's","sql":"'); DROP TABLE json_probe; --"}`,
		`{"esc":"a\"b\\c\/d\n\t","u":"\u00e9\u2603 é"}`,
		"{ \"spaced\" :\n [1, 2.5e3, -0, true, null, {\"n\": {}}] }",
		`{"nul":"x\u0000y"}`,
		`[]`,
	}
	var mine []viaJSON
	for i, d := range docs {
		mine = append(mine, viaJSON{ID: i, Doc: model.JSON(d)})
	}
	if _, err := bdb.NewInsert().Model(&mine).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		if _, err := bdb.NewInsert().Model(&viaBun{ID: 100 + i, Doc: json.RawMessage(d)}).Exec(ctx); err != nil {
			t.Fatalf("bun's path, %s: %v", d, err)
		}
	}
	var differ []int
	if err := bdb.NewSelect().TableExpr("json_probe a").Join("JOIN json_probe b ON b.id = a.id + 100").
		ColumnExpr("a.id").Where("a.id < 100 AND a.doc IS DISTINCT FROM b.doc").Scan(ctx, &differ); err != nil {
		t.Fatal(err)
	}
	if len(differ) > 0 {
		t.Errorf("documents %v are stored differently from bun's jsonb path", differ)
	}
	var back []viaJSON
	if err := bdb.NewSelect().Model(&back).Where("id < 100").Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(back) != len(docs) {
		t.Fatalf("read %d rows, want %d", len(back), len(docs))
	}
	for i, r := range back {
		if !json.Valid(r.Doc) {
			t.Errorf("row %d read back as invalid JSON %q", i, r.Doc)
		}
	}
	// NULL both ways.
	if _, err := bdb.NewInsert().Model(&viaJSON{ID: 200}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var null viaJSON
	if err := bdb.NewSelect().Model(&null).Where("id = 200").Scan(ctx); err != nil || null.Doc != nil {
		t.Errorf("NULL read back as %q, %v", null.Doc, err)
	}
}

func TestJSONEncodesAsItself(t *testing.T) {
	b, err := json.Marshal(struct {
		Data model.JSON `json:"data"`
	}{model.JSON(`{"a": 1}`)})
	if err != nil || string(b) != `{"data":{"a":1}}` {
		t.Errorf("marshal = %s, %v", b, err)
	}
	var v struct {
		Data model.JSON `json:"data"`
	}
	if err := json.Unmarshal([]byte(`{"data": {"b":[2]}}`), &v); err != nil || string(v.Data) != `{"b":[2]}` {
		t.Errorf("unmarshal = %s, %v", v.Data, err)
	}
}

// jsonPiece is one piece of a generated JSON string: its bytes in the
// document and what jsonb holds for them.
type jsonPiece struct{ raw, stored string }

// jsonPieces are the pieces documents are built of: plain and non-ASCII
// text, every short escape, storable \u escapes, and the escapes jsonb
// cannot hold (NUL, lone surrogates), which are stored as their text. A
// lone high surrogate is followed by a dot, so that no low one placed after
// it makes a pair.
var jsonPieces = []jsonPiece{
	{"a", "a"}, {"Jo Ray", "Jo Ray"}, {"é☃", "é☃"}, {"\u2028", "\u2028"}, {"😀", "😀"}, {"'", "'"}, {"''", "''"},
	{`\"`, `\"`}, {`\\`, `\\`}, {`\/`, `\/`}, {`\b\f\n\r\t`, `\b\f\n\r\t`}, {`u0000`, `u0000`},
	{`\u0041`, `\u0041`}, {`\u00e9`, `\u00e9`}, {`\u2028`, `\u2028`}, {`\u001f`, `\u001f`},
	{`\ud83d\ude00`, `\ud83d\ude00`}, {`\uD83D\uDE00`, `\uD83D\uDE00`},
	{`\u0000`, `\\u0000`}, {`\ud83d.`, `\\ud83d.`}, {`\ude00`, `\\ude00`}, {`\uDBFF.`, `\\uDBFF.`},
}

// Over thousands of random documents made of jsonPieces, multi-row, each
// stored document is jsonb-equal to the one the pieces say: a document is
// stored as sent, but for the escapes jsonb cannot hold.
func TestJSONStoresRandomDocumentsAsSent(t *testing.T) {
	bdb, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := bdb.ExecContext(ctx, `CREATE TEMP TABLE json_probe (id int PRIMARY KEY, doc jsonb)`); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 3000
	rows := make([]viaJSON, n)
	want := make([]string, n)
	for i := range rows {
		var raw, stored strings.Builder
		for range rng.IntN(12) {
			p := jsonPieces[rng.IntN(len(jsonPieces))]
			raw.WriteString(p.raw)
			stored.WriteString(p.stored)
		}
		rows[i] = viaJSON{ID: i, Doc: model.JSON(`{"name":"` + raw.String() + `","n":[1,"` + raw.String() + `"]}`)}
		want[i] = `{"name":"` + stored.String() + `","n":[1,"` + stored.String() + `"]}`
	}
	for lo := 0; lo < n; lo += 500 {
		batch := rows[lo : lo+500]
		if _, err := bdb.NewInsert().Model(&batch).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rows {
		var same bool
		if err := bdb.DB.QueryRowContext(ctx, `SELECT doc = $1::jsonb FROM json_probe WHERE id = $2`, want[i], i).Scan(&same); err != nil {
			t.Fatalf("document %d %s: %v", i, rows[i].Doc, err)
		}
		if !same {
			t.Fatalf("document %d %s is not stored as %s", i, rows[i].Doc, want[i])
		}
	}
}

// Whatever bytes it is given, JSON's literal is one SQL string: it starts
// and ends with a quote and every quote inside is doubled, so no document
// can end the literal early.
func FuzzJSONLiteral(f *testing.F) {
	for _, p := range jsonPieces {
		f.Add([]byte(p.raw))
	}
	f.Add([]byte(`\'); DROP TABLE x; --`))
	f.Add([]byte(`\`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		b, err := model.JSON(doc).AppendQuery(schema.QueryGen{}, nil)
		if bytes.IndexByte(doc, 0) >= 0 {
			if err == nil {
				t.Fatalf("a NUL byte was written into a literal: %q", b)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != '\'' || b[len(b)-1] != '\'' {
			t.Fatalf("literal %q is not quoted", b)
		}
		inner := b[1 : len(b)-1]
		if len(bytes.ReplaceAll(inner, []byte("''"), nil)) != len(inner)-2*bytes.Count(inner, []byte("''")) ||
			bytes.Contains(bytes.ReplaceAll(inner, []byte("''"), nil), []byte("'")) {
			t.Fatalf("literal %q has an undoubled quote", b)
		}
		if got := bytes.ReplaceAll(inner, []byte("''"), []byte("'")); len(got) < len(doc) {
			t.Fatalf("literal %q lost bytes of %q", b, doc)
		}
	})
}
