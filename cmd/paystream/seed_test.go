package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/handling"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// seededRows is everything seed may write, read back for comparison.
type seededRows struct {
	Content  []model.Content
	Platform []model.OrganizationPlatformAgreement
	Creator  []model.CreatorOrganizationAgreement
}

func readSeeded(t *testing.T, bdb *bun.DB) seededRows {
	t.Helper()
	ctx := context.Background()
	var r seededRows
	for _, q := range []*bun.SelectQuery{
		bdb.NewSelect().Model(&r.Content).WhereAllWithDeleted().OrderExpr("id"),
		bdb.NewSelect().Model(&r.Platform).OrderExpr("id"),
		bdb.NewSelect().Model(&r.Creator).OrderExpr("id"),
	} {
		if err := q.Scan(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func runCLI(t *testing.T, env config.Getenv, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env, &out, &errOut)
	return out.String() + errOut.String(), err
}

// seed twice leaves the same rows; a checkout for the demo content then
// becomes a purchase split by the seeded agreements.
func TestSeedIsIdempotentAndMakesAFullPurchase(t *testing.T) {
	bdb, dsn := testenv.DB(t)
	env := config.MapEnv(map[string]string{"DATABASE_URL": dsn})

	out, err := runCLI(t, env, "seed")
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "inserted 3 row(s)") || !strings.Contains(out, "platform 300, organization 135, creator 2564") {
		t.Errorf("first seed output:\n%s", out)
	}
	first := readSeeded(t, bdb)
	if len(first.Content) != 1 || len(first.Platform) != 1 || len(first.Creator) != 1 {
		t.Fatalf("after seed: %+v", first)
	}
	c := first.Content[0]
	if c.ID.String() != demo.ContentID || c.OrganizationID.String() != demo.OrganizationID ||
		c.CreatorID != demo.CreatorID || c.PriceCents != demo.PriceCents || c.Currency != demo.Currency {
		t.Errorf("content = %+v, want the internal/demo identities", c)
	}

	out, err = runCLI(t, env, "seed")
	if err != nil {
		t.Fatalf("second seed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "nothing changed") || strings.Contains(out, "created") {
		t.Errorf("second seed should say nothing changed:\n%s", out)
	}
	if diff := cmp.Diff(first, readSeeded(t, bdb)); diff != "" {
		t.Errorf("second seed changed rows (-first +second):\n%s", diff)
	}

	// The same checkout `paystream send checkout.session.completed` builds.
	h, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ev := demoCheckout(t, "evt_seed_1", "cs_test_seed_1", time.Now())
	outcome, err := h.Handle(context.Background(), ev)
	if err != nil || outcome != handling.Applied {
		t.Fatalf("Handle = %s, %v; want applied", outcome, err)
	}
	var p model.Purchase
	if err := bdb.NewSelect().Model(&p).Where("stripe_checkout_session_id = ?", "cs_test_seed_1").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, err := split.Compute(demo.PriceCents, split.Terms{PlatformBps: 1000, OrganizationBps: 500})
	if err != nil {
		t.Fatal(err)
	}
	if want.Platform != 300 || want.Organization != 135 || want.Creator != 2564 {
		t.Fatalf("split.Compute(2999, 10%%, 5%%) = %+v; the example in the docs is wrong", want)
	}
	got := [...]int64{p.AmountPaidCents, p.PlatformFeeCents, p.OrganizationFeeCents, p.CreatorPayoutCents}
	if got != [...]int64{want.Amount, want.Platform, want.Organization, want.Creator} {
		t.Errorf("purchase amount/platform/organization/creator = %v, want %+v", got, want)
	}
	if p.PlatformAgreementID == nil || *p.PlatformAgreementID != first.Platform[0].ID ||
		p.CreatorOrgAgreementID == nil || *p.CreatorOrgAgreementID != first.Creator[0].ID {
		t.Errorf("purchase agreements = %v / %v, want the seeded %s / %s",
			p.PlatformAgreementID, p.CreatorOrgAgreementID, first.Platform[0].ID, first.Creator[0].ID)
	}
	if p.Status != model.PurchaseCompleted {
		t.Errorf("purchase status = %s, want %s", p.Status, model.PurchaseCompleted)
	}
}

// demoCheckout is the checkout.session.completed event `paystream send`
// builds with its defaults, as the processor runtime delivers it.
func demoCheckout(t *testing.T, eventID, session string, at time.Time) stripeevent.Event {
	t.Helper()
	body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{EventID: eventID, Created: at},
		stripefixture.Checkout{
			SessionID: session, PaymentIntentID: "pi_" + session, AmountTotal: demo.PriceCents, Currency: demo.Currency,
			Metadata: stripefixture.PurchaseMetadata(demo.CustomerID, demo.ContentID, demo.OrganizationID, demo.PriceCents, demo.Currency),
		})
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		Created int64 `json:"created"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		t.Fatal(err)
	}
	return stripeevent.Event{ID: eventID, Type: "checkout.session.completed", Endpoint: "default",
		APIVersion: stripefixture.APIVersion, Created: time.Unix(head.Created, 0), ReceivedAt: at,
		Payload: body, Subject: "stripe.events.default.checkout.session.completed", Deliveries: 1}
}

// Seed never overwrites: a row that exists with other values is reported,
// and nothing of the run is written.
func TestSeedRefusesConflictingRows(t *testing.T) {
	org := uuid.MustParse(demo.OrganizationID)
	tests := []struct {
		name     string
		existing any
		args     []string
		want     string
	}{
		{
			name: "content with another price",
			existing: &model.Content{ID: uuid.MustParse(demo.ContentID), CreatorID: demo.CreatorID, OrganizationID: org,
				PriceCents: 100, Currency: "usd", Visibility: "public"},
			want: "price 100 usd",
		},
		{
			name: "platform agreement with another rate",
			existing: &model.OrganizationPlatformAgreement{ID: uuid.New(), OrganizationID: org, PlatformFeePercentage: 700,
				EffectiveFrom: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
			want: "700 bps",
		},
		{
			name: "creator agreement ending in the future",
			existing: &model.CreatorOrganizationAgreement{ID: uuid.New(), CreatorID: demo.CreatorID, OrganizationID: org,
				OrganizationFeePercentage: 500, EffectiveFrom: seedEffectiveFrom, EffectiveUntil: ptr(time.Now().Add(24 * time.Hour))},
			want: "creator \"creator_demo\" already has agreement",
		},
		{
			name:     "same rows but other flags",
			existing: nil,
			args:     []string{"--org-bps", "900"},
			want:     "already has agreement",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bdb, dsn := testenv.DB(t)
			env := config.MapEnv(map[string]string{"DATABASE_URL": dsn})
			if tt.existing != nil {
				if _, err := bdb.NewInsert().Model(tt.existing).Exec(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else if out, err := runCLI(t, env, "seed"); err != nil {
				t.Fatalf("seed: %v\n%s", err, out)
			}
			before := readSeeded(t, bdb)
			out, err := runCLI(t, env, append([]string{"seed"}, tt.args...)...)
			var conflict purchase.SeedConflict
			if !errors.As(err, &conflict) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("seed = %v, want a conflict mentioning %q\n%s", err, tt.want, out)
			}
			if diff := cmp.Diff(before, readSeeded(t, bdb)); diff != "" {
				t.Errorf("a refused seed changed rows (-before +after):\n%s", diff)
			}
		})
	}
}

func TestSeedFlagValidation(t *testing.T) {
	// DATABASE_URL points nowhere: every case must fail before connecting.
	env := config.MapEnv(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable"})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"content not a uuid", []string{"--content", "abc"}, "--content"},
		{"org not a uuid", []string{"--org", "org_1"}, "--org"},
		{"empty creator", []string{"--creator", " "}, "seed: --creator must not be empty"},
		{"upper-case currency", []string{"--currency", "USD"}, `seed: --currency "USD" must be three lower-case letters (e.g. usd)`},
		{"negative price", []string{"--price", "-1"}, "seed: --price -1 outside [0, 1000000000000]"},
		{"platform rate over 100%", []string{"--platform-bps", "10001"}, "seed: --platform-bps 10001 outside [0, 10000]"},
		{"negative organization rate", []string{"--org-bps", "-5"}, "seed: --org-bps -5 outside [0, 10000]"},
		{"stray argument", []string{"now"}, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, env, append([]string{"seed"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error()+out, tt.want) {
				t.Errorf("seed %v = %v, want an error mentioning %q\n%s", tt.args, err, tt.want, out)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
