package loadgen

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/stripefixture"
)

// Placeholders in the template; each is overwritten in place with an id of
// the same length, so building a unique event is one copy and three writes.
const (
	evtSlot = 24 // evt_ + 24
	csSlot  = 58 // cs_test_ + 58
	piSlot  = 24 // pi_ + 24
	cusSlot = 24 // customerId user_ + 24, when PayloadSpec.CustomerID is empty
)

// PayloadSpec describes the events a run sends.
type PayloadSpec struct {
	ContentID, OrganizationID string
	CustomerID                string // "" gives every event its own customer (no contention on one access row)
	Amount                    int64
	Currency                  string
	Size                      int // pad the event to about this many bytes (0: natural size, ~2.5 KiB)
}

// Payloads makes unique, realistic checkout.session.completed events from
// one pre-built template.
type Payloads struct {
	tmpl          []byte
	offEvt, offCS []int
	offPI, offCus []int
	run           string // random run tag so ids never collide across runs
	n             atomic.Uint64
	streams       atomic.Uint32 // mixed streams made from p, for their subscriptions' ids
}

// NewPayloads builds the template once.
func NewPayloads(s PayloadSpec) (*Payloads, error) {
	if s.CustomerID == "" {
		s.CustomerID = "user_" + strings.Repeat("~", cusSlot)
	}
	md := stripefixture.PurchaseMetadata(s.CustomerID, s.ContentID, s.OrganizationID, s.Amount, s.Currency)
	body, err := stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{
		EventID: "evt_" + strings.Repeat("@", evtSlot), Created: time.Now(),
	}, stripefixture.Checkout{
		SessionID: "cs_test_" + strings.Repeat("#", csSlot), PaymentIntentID: "pi_" + strings.Repeat("%", piSlot),
		AmountTotal: s.Amount, Currency: s.Currency, Metadata: md,
	})
	if err != nil {
		return nil, err
	}
	if pad := s.Size - len(body); pad > 0 {
		// Stripe allows 50 metadata keys of up to 500 characters; grow the
		// event with description-like metadata the processor ignores.
		for i := 0; pad > 0 && i < 40; i++ {
			n := min(pad, 480)
			md[fmt.Sprintf("note_%02d", i)] = strings.Repeat("x", n)
			pad -= n + 14
		}
		if body, err = stripefixture.CheckoutEvent("checkout.session.completed", stripefixture.Meta{
			EventID: "evt_" + strings.Repeat("@", evtSlot), Created: time.Now(),
		}, stripefixture.Checkout{
			SessionID: "cs_test_" + strings.Repeat("#", csSlot), PaymentIntentID: "pi_" + strings.Repeat("%", piSlot),
			AmountTotal: s.Amount, Currency: s.Currency, Metadata: md,
		}); err != nil {
			return nil, err
		}
	}
	tag := make([]byte, 4)
	_, _ = rand.Read(tag)
	p := &Payloads{tmpl: body, run: hex.EncodeToString(tag)}
	p.offEvt = offsets(body, strings.Repeat("@", evtSlot))
	p.offCS = offsets(body, strings.Repeat("#", csSlot))
	p.offPI = offsets(body, strings.Repeat("%", piSlot))
	p.offCus = offsets(body, strings.Repeat("~", cusSlot))
	if len(p.offEvt) != 1 || len(p.offCS) == 0 || len(p.offPI) == 0 {
		return nil, fmt.Errorf("loadgen: template placeholders not found")
	}
	return p, nil
}

// Len is the size of every event in bytes.
func (p *Payloads) Len() int { return len(p.tmpl) }

// IDs are the Stripe ids written into one generated event.
type IDs struct {
	Event, Session, PaymentIntent, Customer string
}

// Next writes a new unique event into buf (grown as needed) and returns it
// with its ids.
func (p *Payloads) Next(buf []byte) ([]byte, IDs) {
	i := p.n.Add(1)
	buf = append(buf[:0], p.tmpl...)
	id := p.run + fmt.Sprintf("%016d", i) // 8 + 16 = 24
	cs := strings.Repeat("0", csSlot-len(id)) + id
	for _, o := range p.offEvt {
		copy(buf[o:], id)
	}
	for _, o := range p.offCS {
		copy(buf[o:], cs)
	}
	for _, o := range p.offPI {
		copy(buf[o:], id)
	}
	ids := IDs{Event: "evt_" + id, Session: "cs_test_" + cs, PaymentIntent: "pi_" + id}
	for _, o := range p.offCus {
		copy(buf[o:], id)
		ids.Customer = "user_" + id
	}
	return buf, ids
}

// Sign returns the Stripe-Signature header for body at now.
func Sign(body []byte, secret string, now time.Time) string {
	sig := webhook.ComputeSignature(now, body, secret)
	return "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=" + hex.EncodeToString(sig)
}

func offsets(b []byte, s string) []int {
	var out []int
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(s))
		if j < 0 {
			return out
		}
		out = append(out, i+j)
		i += j + len(s)
	}
}

// Reissue copies body (an event from Next) under a fresh event id: the same
// checkout session delivered as a second event, as Stripe does when an event
// is re-created. It returns the new body and event id.
func (p *Payloads) Reissue(body []byte) ([]byte, string) {
	out := append([]byte(nil), body...)
	id := p.run + fmt.Sprintf("%016d", p.n.Add(1))
	copy(out[p.offEvt[0]:], id)
	return out, "evt_" + id
}
