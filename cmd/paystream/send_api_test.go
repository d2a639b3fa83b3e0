package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// send --api-session builds the webhook of a session the purchase API
// created, with the metadata of its checkout_sessions row.
func TestSendCompletesAnAPISession(t *testing.T) {
	bdb, dsn := testenv.DB(t)
	org, content := uuid.New(), uuid.New()
	for _, m := range []any{
		&model.Content{ID: content, CreatorID: "c1", OrganizationID: org, PriceCents: 1250, Currency: "eur", Visibility: "public"},
		&model.CheckoutSession{ID: "cs_test_from_api", CustomerID: "cust_api", ContentID: content, OrganizationID: org,
			AmountCents: 1250, Currency: "eur", Status: model.CheckoutOpen, ExpiresAt: time.Now().Add(time.Hour)},
	} {
		if _, err := bdb.NewInsert().Model(m).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{secret: "whsec_api"}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	env := config.MapEnv(map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_api", "DATABASE_URL": dsn})
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"send", "checkout.session.completed", "--api-session", "cs_test_from_api", "--url", srv.URL}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v\n%s", err, errOut.String())
	}
	if len(rec.events) != 1 {
		t.Fatalf("received %d events", len(rec.events))
	}
	ev := rec.events[0]
	want := map[string]string{"customerId": "cust_api", "contentId": content.String(), "organizationId": org.String(),
		"amountPaidCents": "1250", "currency": "eur"}
	for k, v := range want {
		if got := ev.GetObjectValue("metadata", k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	if ev.GetObjectValue("id") != "cs_test_from_api" || ev.GetObjectValue("amount_total") != "1250" || ev.GetObjectValue("currency") != "eur" {
		t.Errorf("session = %v", ev.Data.Object)
	}
	err = run(context.Background(), []string{"send", "checkout.session.completed", "--api-session", "cs_unknown", "--url", srv.URL}, env, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "cs_unknown") {
		t.Errorf("unknown session: %v", err)
	}
}
