package ledger

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/split"
	"github.com/paystream/paystream/model"
)

// The 2999 purchase of the design, with a 20 % organization cut:
// platform 300, organization 540, creator 2159.
func sale2999() Sale {
	return Sale{
		PurchaseID: uuid.MustParse("00000000-0000-7000-8000-000000000001"), Currency: "usd",
		Split:          split.Split{Amount: 2999, Platform: 300, Organization: 540, Creator: 2159},
		OrganizationID: uuid.MustParse("00000000-0000-4000-8000-0000000000aa"), CreatorID: "cr_1", PurchasedAt: t0,
	}
}

// acc names the sale's accounts in the tables below: p/o/c for the parties
// and clearing.
func acc(s Sale, who string, k Kind) Account {
	switch who {
	case "p":
		return s.account(platform, k)
	case "o":
		return s.account(organization, k)
	case "c":
		return s.account(creator, k)
	}
	return s.clearing()
}

type want map[Account]int64

func entriesOf(t Transaction) want {
	m := want{}
	for _, e := range t.Entries {
		m[e.Account] += e.Amount
	}
	return m
}

func TestPurchaseRules(t *testing.T) {
	s := sale2999()
	at := t0.Add(time.Hour)
	type step struct {
		name  string
		rule  func(b Book) (Transaction, error)
		key   string // "" = nothing to post
		moves func(s Sale) want
	}
	completed := step{"sale", func(Book) (Transaction, error) { return PurchaseCompleted(s) }, "purchase:" + s.PurchaseID.String(),
		func(s Sale) want {
			return want{acc(s, "", StripeClearing): -2999, acc(s, "p", Pending): 300, acc(s, "o", Pending): 540, acc(s, "c", Pending): 2159}
		}}
	release := step{"release", func(b Book) (Transaction, error) { return Release(s, b, at) }, "release:" + s.PurchaseID.String(), nil}
	refund := func(cum int64) step {
		return step{"refund", func(b Book) (Transaction, error) { return Refund(s, b, cum, "re_1", at) }, "", nil}
	}
	key := func(suffix string) string { return "refund:" + s.PurchaseID.String() + ":" + suffix }
	dkey := func(suffix string) string { return "dispute:" + s.PurchaseID.String() + ":" + suffix }
	tests := []struct {
		name  string
		steps []step
	}{
		{"sale then release", []step{completed, {release.name, release.rule, release.key, func(s Sale) want {
			return want{acc(s, "p", Pending): -300, acc(s, "p", Revenue): 300, acc(s, "o", Pending): -540, acc(s, "o", Available): 540,
				acc(s, "c", Pending): -2159, acc(s, "c", Available): 2159}
		}}}},
		{"partial refund within the hold, repeated, then smaller, then beyond the amount", []step{completed,
			// Reversal(1000) = 101 / 180 / 719.
			{"refund 1000", refund(1000).rule, key("1000"), func(s Sale) want {
				return want{acc(s, "", StripeClearing): 1000, acc(s, "p", Pending): -101, acc(s, "o", Pending): -180, acc(s, "c", Pending): -719}
			}},
			{"the same cumulative again", refund(1000).rule, "", nil},
			{"an older, smaller cumulative", refund(400).rule, "", nil},
			{"beyond the amount counts as all of it", refund(5000).rule, key("2999"), func(s Sale) want {
				return want{acc(s, "", StripeClearing): 1999, acc(s, "p", Pending): -199, acc(s, "o", Pending): -360, acc(s, "c", Pending): -1440}
			}},
			{"release of a fully refunded sale moves nothing", release.rule, release.key, func(Sale) want { return want{} }},
		}},
		{"refund after the release comes out of available", []step{completed, {release.name, release.rule, release.key, nil},
			{"refund 1000", refund(1000).rule, key("1000"), func(s Sale) want {
				return want{acc(s, "", StripeClearing): 1000, acc(s, "p", Revenue): -101, acc(s, "o", Available): -180, acc(s, "c", Available): -719}
			}},
		}},
		{"dispute opened in the hold, released, won", []step{completed,
			{"open 2999", func(b Book) (Transaction, error) { return DisputeOpened(s, b, 2999, "du_1", at) }, dkey("opened"), func(s Sale) want {
				return want{acc(s, "p", Pending): -300, acc(s, "p", Disputed): 300, acc(s, "o", Pending): -540, acc(s, "o", Disputed): 540,
					acc(s, "c", Pending): -2159, acc(s, "c", Disputed): 2159}
			}},
			{"second opening", func(b Book) (Transaction, error) { return DisputeOpened(s, b, 2999, "du_1", at) }, "", nil},
			{"release while held moves nothing", release.rule, release.key, func(Sale) want { return want{} }},
			{"won returns to available", func(b Book) (Transaction, error) { return DisputeWon(s, b, "du_1", at) }, dkey("closed"), func(s Sale) want {
				return want{acc(s, "p", Disputed): -300, acc(s, "p", Revenue): 300, acc(s, "o", Disputed): -540, acc(s, "o", Available): 540,
					acc(s, "c", Disputed): -2159, acc(s, "c", Available): 2159}
			}},
			{"a second close", func(b Book) (Transaction, error) { return DisputeLost(s, b, 2999, "du_1", at) }, "", nil},
		}},
		{"partial refund, then a dispute of the rest, lost", []step{completed, {"refund 1000", refund(1000).rule, key("1000"), nil},
			// The dispute holds what was not given back: 1999 = 199 / 360 / 1440.
			{"open 2999", func(b Book) (Transaction, error) { return DisputeOpened(s, b, 2999, "du_1", at) }, dkey("opened"), func(s Sale) want {
				return want{acc(s, "p", Pending): -199, acc(s, "p", Disputed): 199, acc(s, "o", Pending): -360, acc(s, "o", Disputed): 360,
					acc(s, "c", Pending): -1440, acc(s, "c", Disputed): 1440}
			}},
			{"lost gives the held amount back", func(b Book) (Transaction, error) { return DisputeLost(s, b, 2999, "du_1", at) }, dkey("closed"), func(s Sale) want {
				return want{acc(s, "", StripeClearing): 1999, acc(s, "p", Disputed): -199, acc(s, "o", Disputed): -360, acc(s, "c", Disputed): -1440}
			}},
			{"a refund after the loss has nothing left to give back", refund(2999).rule, key("2999"), func(Sale) want { return want{} }},
		}},
		{"a lost close that overtook its opening", []step{completed,
			{"lost 1000", func(b Book) (Transaction, error) { return DisputeLost(s, b, 1000, "du_1", at) }, dkey("closed"), func(s Sale) want {
				return want{acc(s, "", StripeClearing): 1000, acc(s, "p", Pending): -101, acc(s, "o", Pending): -180, acc(s, "c", Pending): -719}
			}},
			{"the late opening", func(b Book) (Transaction, error) { return DisputeOpened(s, b, 1000, "du_1", at) }, "", nil},
		}},
		{"a won close that overtook its opening", []step{completed,
			{"won", func(b Book) (Transaction, error) { return DisputeWon(s, b, "du_1", at) }, dkey("closed"), func(Sale) want { return want{} }},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Book{PurchaseID: s.PurchaseID}
			for _, st := range tt.steps {
				tx, err := st.rule(b)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if st.key == "" && !tx.IsZero() {
					t.Fatalf("%s: posted %s %v, want nothing", st.name, tx.Key, tx.Entries)
				}
				if st.key != "" && tx.Key != st.key {
					t.Fatalf("%s: key %q, want %q", st.name, tx.Key, st.key)
				}
				if tx.IsZero() {
					continue
				}
				if err := tx.Validate(); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if st.moves != nil {
					if got, w := entriesOf(tx), st.moves(s); !maps.Equal(got, w) {
						t.Fatalf("%s: entries %v, want %v", st.name, formatSums(got), formatSums(w))
					}
				}
				if err := b.apply(s, tx); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
			}
		})
	}
}

func TestRulesNeedThePostedSale(t *testing.T) {
	s := sale2999()
	b := Book{PurchaseID: s.PurchaseID}
	for name, f := range map[string]func() (Transaction, error){
		"release":   func() (Transaction, error) { return Release(s, b, t0) },
		"refund":    func() (Transaction, error) { return Refund(s, b, 10, "", t0) },
		"opened":    func() (Transaction, error) { return DisputeOpened(s, b, 10, "du", t0) },
		"won":       func() (Transaction, error) { return DisputeWon(s, b, "du", t0) },
		"lost":      func() (Transaction, error) { return DisputeLost(s, b, 10, "du", t0) },
		"wrongbook": func() (Transaction, error) { return Release(s, Book{PurchaseID: uuid.New(), Posted: true}, t0) },
	} {
		if _, err := f(); err == nil || (name != "wrongbook" && !errors.Is(err, ErrNotPosted)) {
			t.Errorf("%s on an unposted sale: %v, want ErrNotPosted", name, err)
		}
	}
	bad := s
	bad.Split.Creator--
	if _, err := PurchaseCompleted(bad); err == nil {
		t.Error("PurchaseCompleted of a split that does not sum: no error")
	}
	posted := Book{PurchaseID: s.PurchaseID, Posted: true}
	if _, err := Refund(s, posted, -1, "", t0); err == nil {
		t.Error("negative refund: no error")
	}
	if _, err := DisputeLost(s, posted, -1, "", t0); err == nil {
		t.Error("negative dispute: no error")
	}
}

func TestPayoutRules(t *testing.T) {
	p := &model.Payout{ID: uuid.MustParse("00000000-0000-7000-8000-0000000000f1"), PayeeKind: model.PayeeCreator, PayeeID: "cr_1",
		Currency: "eur", AmountCents: 5000, CreatedAt: t0}
	a := func(k Kind) Account { return Account{Owner: "creator:cr_1", Currency: "eur", Kind: k} }
	id := p.ID.String()
	tests := []struct {
		name string
		rule func() (Transaction, error)
		key  string
		want want
	}{
		{"created", func() (Transaction, error) { return PayoutCreated(p) }, "payout:" + id, want{a(Available): -5000, a(InTransit): 5000}},
		{"paid", func() (Transaction, error) { return PayoutPaid(p, "tr_1", t0) }, "payout:" + id + ":settled", want{a(InTransit): -5000, a(PaidOut): 5000}},
		{"failed", func() (Transaction, error) { return PayoutFailed(p, t0) }, "payout:" + id + ":settled", want{a(InTransit): -5000, a(Available): 5000}},
		{"reversed in part", func() (Transaction, error) { return TransferReversed(p, 1200, "trr_1", t0) }, "payout:" + id + ":reversed:1200",
			want{a(PaidOut): -1200, a(Available): 1200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := tt.rule()
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Validate(); err != nil {
				t.Fatal(err)
			}
			if tx.Key != tt.key || !maps.Equal(entriesOf(tx), tt.want) {
				t.Fatalf("%s %s, want %s %s", tx.Key, formatSums(entriesOf(tx)), tt.key, formatSums(tt.want))
			}
		})
	}
	// The second reversal event posts only the growth; an older one nothing.
	later := *p
	later.AmountReversedCents = 1200
	if tx, err := TransferReversed(&later, 2000, "trr_2", t0); err != nil || !maps.Equal(entriesOf(tx), want{a(PaidOut): -800, a(Available): 800}) {
		t.Errorf("second reversal = %v, %v", tx.Entries, err)
	}
	if tx, err := TransferReversed(&later, 1000, "trr_0", t0); err != nil || !tx.IsZero() {
		t.Errorf("older reversal = %+v, %v; want nothing", tx, err)
	}
	if _, err := TransferReversed(p, 5001, "", t0); err == nil {
		t.Error("reversal beyond the amount: no error")
	}
	bad := *p
	bad.PayeeKind = "platform"
	if _, err := PayoutCreated(&bad); err == nil {
		t.Error("payout to the platform: no error")
	}
}

func TestValidate(t *testing.T) {
	s := sale2999()
	good, err := PurchaseCompleted(s)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*Transaction)) Transaction {
		c := good
		c.Entries = append([]Entry(nil), good.Entries...)
		f(&c)
		return c
	}
	tests := []struct {
		name string
		t    Transaction
		is   error
	}{
		{"unbalanced", edit(func(t *Transaction) { t.Entries[0].Amount++ }), ErrUnbalanced},
		{"zero entry", edit(func(t *Transaction) { t.Entries = append(t.Entries, Entry{Account: acc(s, "c", Available)}) }), nil},
		{"key not of its cause", edit(func(t *Transaction) { t.Key = "purchase:x" }), nil},
		{"no key", edit(func(t *Transaction) { t.Key = "" }), nil},
		{"unknown cause", edit(func(t *Transaction) { t.Cause = "gift" }), nil},
		{"no time", edit(func(t *Transaction) { t.EffectiveAt = time.Time{} }), nil},
		{"platform has no available", edit(func(t *Transaction) { t.Entries[len(t.Entries)-1].Account.Kind = Available }), nil},
		{"payee has no revenue", edit(func(t *Transaction) { t.Entries[0].Account.Kind = Revenue }), nil},
		{"bad owner", edit(func(t *Transaction) { t.Entries[0].Account.Owner = "organization:42" }), nil},
		{"bad currency", edit(func(t *Transaction) { t.Entries[0].Account.Currency = "USD" }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
}
