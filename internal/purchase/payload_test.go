package purchase_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// trickyStrings are JSON string bodies (the bytes between the quotes, as
// Stripe would send them) that a buyer can type into Stripe Checkout or a
// platform can put into metadata. stored is what jsonb holds for them when
// it differs from raw: an escape jsonb cannot represent (the NUL character,
// a lone surrogate) is kept as its six characters of text.
var trickyStrings = []struct {
	name, raw, stored string
	// customerID: the string is printable text, so it is also a valid
	// customerId (the metadata contract refuses control characters).
	customerID bool
}{
	{name: "backslash-u0000 as text", raw: `Jo \\u0000 \"Q\" \\\\ Ray`, customerID: true},
	{name: "escaped backslash", raw: `a\\b\\`, customerID: true},
	{name: "escaped quote", raw: `say \"hi\"`, customerID: true},
	{name: "surrogate pair", raw: `smile \ud83d\ude00 \uD83D\uDE00`, customerID: true},
	{name: "raw and escaped U+2028", raw: "line\u2028sep \\u2028 \\u2029"},
	{name: "sql quote", raw: `it's '); DROP TABLE purchases; --`, customerID: true},
	{name: "escaped slash and unicode", raw: `\/path \u00e9\u2603 é`, customerID: true},
	{name: "text backslash then NUL escape", raw: `a\\\u0000b`, stored: `a\\\\u0000b`},
	{name: "NUL escape", raw: `Jo \u0000 Ray`, stored: `Jo \\u0000 Ray`},
	{name: "lone high surrogate", raw: `x\ud83dy`, stored: `x\\ud83dy`},
	{name: "lone low surrogate", raw: `x\ude00y`, stored: `x\\ude00y`},
	{name: "high surrogate before a non-surrogate escape", raw: `\ud83d\u0041`, stored: `\\ud83d\u0041`},
}

// A paid checkout carrying any of trickyStrings, in the buyer's name, the
// invoice description, a metadata note and (when it is printable) the
// customerId itself, becomes one purchase on both paths, and stripe_events
// holds the body as sent: jsonb-equal to it.
func TestTrickyStringsAreStoredAsSent(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		for i, tt := range trickyStrings {
			t.Run(tt.name, func(t *testing.T) {
				id, session := fmt.Sprintf("evt_tricky_%d", i), fmt.Sprintf("cs_tricky_%d", i)
				customer := fmt.Sprintf("user_tricky_%d", i)
				ev := checkout(t, "checkout.session.completed", id, t0.Add(-time.Minute), cat, session, 2999,
					func(c *stripefixture.Checkout) {
						c.Metadata["note"] = "@@NOTE@@"
						c.Metadata["customerId"] = customer
						if tt.customerID {
							c.Metadata["customerId"] = "@@CUSTOMER@@"
						}
					})
				str := `"` + tt.raw + `"`
				body := replaceOnce(t, ev.Payload, `"@@NOTE@@"`, str)
				body = replaceOnce(t, body, `"Jenny Rosen"`, str)
				body = replaceOnce(t, body, `"description":null`, `"description":`+str)
				if tt.customerID {
					body = replaceOnce(t, body, `"@@CUSTOMER@@"`, str)
				}
				ev.Payload = body
				if got, err := e.handle(ev); err != nil || got != handling.Applied {
					t.Fatalf("Handle = %s, %v; want applied", got, err)
				}

				p := e.purchaseBySession(session)
				if tt.customerID {
					customer = decodeString(t, tt.raw)
				}
				if p.CustomerID != customer || p.Status != model.PurchaseCompleted {
					t.Errorf("purchase customer %q status %s, want %q completed", p.CustomerID, p.Status, customer)
				}
				if a := e.access(customer, cat.content); a == nil || a.RevokedAt != nil {
					t.Errorf("access of %q = %+v", customer, a)
				}
				if n := e.count("outbox", "aggregate_id = ?", p.ID); n != 1 {
					t.Errorf("outbox rows = %d, want 1", n)
				}
				want := body
				if tt.stored != "" {
					want = bytes.ReplaceAll(body, []byte(tt.raw), []byte(tt.stored))
				}
				var same bool
				if err := e.db.DB.QueryRowContext(context.Background(),
					`SELECT payload = $1::jsonb FROM stripe_events WHERE event_id = $2`, string(want), id).Scan(&same); err != nil {
					t.Fatal(err)
				}
				if !same {
					t.Errorf("stripe_events.payload is not the body as sent")
				}
			})
		}
	})
}

// replaceOnce replaces the first old in body with new, and fails when old
// is not there.
func replaceOnce(t *testing.T, body []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(body, []byte(old)) {
		t.Fatalf("fixture has no %s", old)
	}
	return bytes.Replace(body, []byte(old), []byte(new), 1)
}

// decodeString is the text of the JSON string whose escaped content is raw.
func decodeString(t *testing.T, raw string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
		t.Fatal(err)
	}
	return s
}
