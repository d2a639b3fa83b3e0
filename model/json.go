package model

import (
	"encoding/json"
	"fmt"

	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"
)

// JSON is a JSON document stored in a jsonb column as it is. bun writes a
// `type:jsonb` field through encoding/json, which validates and compacts the
// whole document again on every insert: for the 2.3 KB Stripe events that
// was a tenth of the processor's CPU. The documents stored here were decoded
// (so validated) before, so JSON hands them straight to the dialect's JSON
// literal, with the same escaping bun applies to jsonb (a \u0000 escape,
// which jsonb rejects, is kept as text).
type JSON json.RawMessage

// AppendQuery writes j as a jsonb literal; nil is NULL.
func (j JSON) AppendQuery(gen schema.QueryGen, b []byte) ([]byte, error) {
	if j == nil {
		return dialect.AppendNull(b), nil
	}
	return gen.Dialect().AppendJSON(b, j), nil
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
