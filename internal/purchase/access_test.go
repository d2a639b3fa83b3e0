package purchase_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// A purchase meets a content_access row of another kind: an active grant is
// left alone, an expired or revoked one is taken over by the purchase.
func TestPurchaseMeetsGrantOfAnotherKind(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		past, future := t0.Add(-time.Hour), t0.Add(24*time.Hour)
		tests := []struct {
			name      string
			grant     model.ContentAccess
			wantType  string
			purchased bool // the row now points at the purchase
		}{
			{"active subscription stays", model.ContentAccess{AccessType: model.AccessSubscription, ExpiresAt: &future},
				model.AccessSubscription, false},
			{"complimentary without end stays", model.ContentAccess{AccessType: model.AccessComplimentary},
				model.AccessComplimentary, false},
			{"expired subscription is taken over", model.ContentAccess{AccessType: model.AccessSubscription, ExpiresAt: &past},
				model.AccessPurchased, true},
			{"revoked preview is taken over", model.ContentAccess{AccessType: model.AccessPreview, RevokedAt: &past},
				model.AccessPurchased, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnvOn(t, path, purchase.AccessPolicy{})
				w := newWorld(e.seedContent(), "grant")
				g := tt.grant
				g.ID, g.UserID, g.ContentID, g.OrganizationID = uuid.New(), w.customer, w.cat.content, w.cat.org
				g.GrantedAt, g.CreatedAt, g.UpdatedAt = past, past, past
				e.insert(&g)

				e.mustHandle(w.checkout(t, "checkout.session.completed", "evt_c", t0, ""), handling.Applied)
				p := e.purchaseBySession(w.session)
				a := e.access(w.customer, w.cat.content)
				if a == nil || a.ID != g.ID || a.AccessType != tt.wantType || a.RevokedAt != nil {
					t.Fatalf("access = %+v, want row %s of type %s, not revoked", a, g.ID, tt.wantType)
				}
				if got := a.PurchaseID != nil && *a.PurchaseID == p.ID; got != tt.purchased {
					t.Errorf("access points at the purchase = %v, want %v (%+v)", got, tt.purchased, a)
				}
				if tt.purchased && a.ExpiresAt != nil {
					t.Errorf("a purchased row kept expires_at %v", a.ExpiresAt)
				}
			})
		}
	})
}

// Two purchases of one content by one customer: the row follows the newest
// purchase that grants access, and is revoked only when neither does.
func TestAccessFollowsTheNewestGrantingPurchase(t *testing.T) {
	forEachPath(t, func(t *testing.T, path purchase.BatchPath) {
		e := newEnvOn(t, path, purchase.AccessPolicy{})
		cat := e.seedContent()
		w1, w2 := newWorld(cat, "first"), newWorld(cat, "second")
		w2.customer = w1.customer

		e.mustHandle(w1.checkout(t, "checkout.session.completed", "evt_c1", t0, ""), handling.Applied)
		e.mustHandle(w2.checkout(t, "checkout.session.completed", "evt_c2", t0.Add(time.Hour), ""), handling.Applied)
		p1, p2 := e.purchaseBySession(w1.session), e.purchaseBySession(w2.session)
		pointsAt := func(step string, want uuid.UUID) {
			t.Helper()
			a := e.access(w1.customer, cat.content)
			if a == nil || a.RevokedAt != nil || a.PurchaseID == nil || *a.PurchaseID != want {
				t.Fatalf("%s: access = %+v, want active through %s", step, a, want)
			}
		}
		pointsAt("after the second purchase", p2.ID)

		e.mustHandle(w2.refund(t, "evt_r2", t0.Add(2*time.Hour), refundAll(w2)), handling.Applied)
		pointsAt("after refunding the second", p1.ID)

		e.mustHandle(w1.refund(t, "evt_r1", t0.Add(3*time.Hour), refundAll(w1)), handling.Applied)
		if a := e.access(w1.customer, cat.content); a == nil || a.RevokedAt == nil || a.RevokeReason == nil || *a.RevokeReason != "full_refund" {
			t.Fatalf("after refunding both: access = %+v, want revoked for full_refund", a)
		}
		ok, err := purchase.CheckAccess(t.Context(), e.db, w1.customer, cat.content, t0.Add(4*time.Hour), purchase.AccessPolicy{})
		if err != nil || ok {
			t.Errorf("CheckAccess after both refunds = %v, %v; want false", ok, err)
		}
	})
}

// refundAll is one refund of w's whole amount.
func refundAll(w world) stripefixture.Refund {
	return stripefixture.Refund{ID: "re_" + w.session, Amount: w.amount, Reason: "requested_by_customer"}
}
