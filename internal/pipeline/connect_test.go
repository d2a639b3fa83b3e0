package pipeline_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/model"
)

// Creator payouts' Connect webhooks end to end: Stripe signs account
// events with the Connect endpoint's own secret and posts them to
// /webhooks/stripe/connect; the edge (started as cmd/edge starts it, with
// STRIPE_WEBHOOK_SECRET_CONNECT) verifies and publishes them, and the
// processor's payout family applies them to the payee, an older event
// never over a newer one, and relays payees.updated.
func TestConnectAccountUpdatedThroughTheEdge(t *testing.T) {
	s := newStack(t)
	connectSecret := stripefixture.NewSecret()
	cfg, err := config.ParseEdge(config.MapEnv(map[string]string{
		"NATS_URL": s.nats.URL(), config.SecretVar: s.secret, config.SecretVar + "_CONNECT": connectSecret,
		"EDGE_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "EDGE_RATE_LIMIT": "0",
	}), []string{config.SecretVar, config.SecretVar + "_CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	edgeURL := "http://" + s.runApp("edge-connect", app.Edge(cfg)).Edge.Public + "/webhooks/stripe/connect"
	s.startProcessor(procOpts{})

	acct := "acct_1E2eConnect"
	if _, err := s.db.NewInsert().Model(&model.Payee{Kind: model.PayeeCreator, ID: creatorID, StripeAccountID: &acct,
		RequirementsDue: model.JSON("[]")}).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	post := func(secret string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, edgeURL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Stripe-Signature", stripefixture.Sign(body, secret, time.Now()))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	updated := func(id string, at time.Time, a stripefixture.Account) []byte {
		t.Helper()
		a.ID = acct
		b, err := stripefixture.AccountUpdatedEvent(stripefixture.Meta{EventID: id, Created: at}, a)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	newer := updated("evt_connect_newer", t0.Add(time.Minute), stripefixture.Account{ChargesEnabled: true, PayoutsEnabled: true})
	older := updated("evt_connect_older", t0, stripefixture.Account{CurrentlyDue: []string{"external_account"}})

	// The default endpoint's secret is not the Connect endpoint's.
	if code := post(s.secret, newer); code != http.StatusUnauthorized {
		t.Fatalf("signed with another endpoint's secret: %d, want 401", code)
	}
	if code := post(connectSecret, newer); code != http.StatusOK {
		t.Fatalf("account.updated: %d, want 200", code)
	}
	payee := func() model.Payee {
		t.Helper()
		var p model.Payee
		if err := s.db.NewSelect().Model(&p).Where("kind = ? AND id = ?", model.PayeeCreator, creatorID).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p
	}
	eventually(t, 15*time.Second, "the payee updated by account.updated", func() bool {
		return payee().PayoutsEnabled
	})
	if code := post(connectSecret, older); code != http.StatusOK {
		t.Fatalf("older account.updated: %d", code)
	}
	eventually(t, 15*time.Second, "the older event recorded", func() bool {
		return s.count("stripe_events", "event_id = ? AND outcome = ?", "evt_connect_older", model.EventDuplicate) == 1
	})
	if p := payee(); !p.PayoutsEnabled || !p.ChargesEnabled || string(p.RequirementsDue) != "[]" || !p.AccountEventCreated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("the older event overwrote the newer: %+v (%s)", p, p.RequirementsDue)
	}
	if n := s.count("stripe_events", "event_id = ? AND endpoint = 'connect' AND outcome = ?", "evt_connect_newer", model.EventApplied); n != 1 {
		t.Fatalf("stripe_events of the newer event on the connect endpoint: %d", n)
	}
	eventually(t, 15*time.Second, "payees.updated relayed", func() bool {
		return s.count("outbox", "subject = ? AND published_at IS NOT NULL", payout.PayeeUpdatedSubject) == 1
	})

	// The account disconnects the platform: the payee is blocked.
	deauth, err := stripefixture.DeauthorizedEvent(stripefixture.Meta{EventID: "evt_connect_deauth", Created: t0.Add(2 * time.Minute)}, acct)
	if err != nil {
		t.Fatal(err)
	}
	if code := post(connectSecret, deauth); code != http.StatusOK {
		t.Fatalf("deauthorized: %d", code)
	}
	eventually(t, 15*time.Second, "the payee blocked", func() bool {
		p := payee()
		return p.PayoutsBlockedReason != nil && *p.PayoutsBlockedReason == payout.CodeDeauthorized && !p.PayoutsEnabled
	})
}
