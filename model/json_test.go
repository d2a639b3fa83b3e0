package model_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/uptrace/bun"

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
