package edge

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/stripefixture"
)

// mustEvent builds a realistic signed-able event body.
func mustEvent(tb testing.TB, id, apiVersion string) []byte {
	tb.Helper()
	body, err := stripefixture.CheckoutEvent("checkout.session.completed",
		stripefixture.Meta{EventID: id, APIVersion: apiVersion, Created: time.Unix(1_800_000_000, 0)},
		stripefixture.Checkout{AmountTotal: 2999})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const secret, old, other = "whsec_current", "whsec_previous", "whsec_someoneelse"
	body := mustEvent(t, "evt_verify", "")
	sign := func(b []byte, s string, at time.Time) string { return stripefixture.Sign(b, s, at) }
	oldAPI := mustEvent(t, "evt_v", "2020-08-27")
	tampered := bytes.Replace(body, []byte(`"amount_total":2999`), []byte(`"amount_total":1`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("tampering changed nothing")
	}
	v0Only := fmt.Sprintf("t=%d,v0=%s", now.Unix(), hex.EncodeToString(webhook.ComputeSignature(now, body, secret)))

	tests := []struct {
		name       string
		header     string
		body       []byte
		secrets    []string
		wantCode   fault.Code // "" = verifies
		wantReason string
	}{
		{"valid", sign(body, secret, now), body, []string{secret}, "", ""},
		{"rotated: second secret matches", sign(body, old, now), body, []string{secret, old}, "", ""},
		{"header with two v1 signatures during Stripe's own rollover",
			sign(body, other, now) + ",v1=" + hex.EncodeToString(webhook.ComputeSignature(now, body, secret)),
			body, []string{secret}, "", ""},
		{"other API version accepted", sign(oldAPI, secret, now), oldAPI, []string{secret}, "", ""},
		{"just inside tolerance (past)", sign(body, secret, now.Add(-300*time.Second)), body, []string{secret}, "", ""},
		{"just inside tolerance (future)", sign(body, secret, now.Add(300*time.Second)), body, []string{secret}, "", ""},
		{"missing header", "", body, []string{secret}, fault.Invalid, ReasonMissingSignature},
		{"malformed: garbage", "garbage", body, []string{secret}, fault.Invalid, ReasonMalformedSignature},
		{"malformed: no timestamp", "v1=abcdef", body, []string{secret}, fault.Invalid, ReasonMalformedSignature},
		{"malformed: timestamp not a number", "t=soon,v1=abcdef", body, []string{secret}, fault.Invalid, ReasonMalformedSignature},
		{"malformed: two timestamps", sign(body, secret, now) + ",t=1", body, []string{secret}, fault.Invalid, ReasonMalformedSignature},
		{"malformed: extra equals", sign(body, secret, now) + "=", body, []string{secret}, fault.Invalid, ReasonMalformedSignature},
		{"wrong secret", sign(body, other, now), body, []string{secret, old}, fault.Unauthenticated, ReasonBadSignature},
		{"tampered body", sign(body, secret, now), tampered, []string{secret}, fault.Unauthenticated, ReasonBadSignature},
		{"v0-only header", v0Only, body, []string{secret}, fault.Unauthenticated, ReasonBadSignature},
		{"timestamp only", fmt.Sprintf("t=%d", now.Unix()), body, []string{secret}, fault.Unauthenticated, ReasonBadSignature},
		{"signature of another timestamp", fmt.Sprintf("t=%d,v1=%s", now.Unix(), hex.EncodeToString(webhook.ComputeSignature(now.Add(-time.Second), body, secret))), body, []string{secret}, fault.Unauthenticated, ReasonBadSignature},
		{"stale", sign(body, secret, now.Add(-301*time.Second)), body, []string{secret}, fault.Unauthenticated, ReasonStaleTimestamp},
		{"future", sign(body, secret, now.Add(301*time.Second)), body, []string{secret}, fault.Unauthenticated, ReasonFutureTimestamp},
	}
	v := Verifier{Tolerance: 300 * time.Second, Now: func() time.Time { return now }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.header, tt.body, tt.secrets)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want ok", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = nil, want %s/%s", tt.wantCode, tt.wantReason)
			}
			if c, r := fault.CodeOf(err), fault.ReasonOf(err); c != tt.wantCode || r != tt.wantReason {
				t.Errorf("Verify = %v (%s/%s), want %s/%s", err, c, r, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestStatusOfEveryReason(t *testing.T) {
	// The design's status table, through fault's one mapping.
	tests := []struct {
		code fault.Code
		want int
	}{
		{fault.Invalid, 400}, {fault.Unauthenticated, 401}, {fault.NotFound, 404}, {fault.NotAllowed, 405},
		{fault.TooLarge, 413}, {fault.RateLimited, 429}, {fault.Unavailable, 503},
	}
	for _, tt := range tests {
		if got := fault.HTTPStatus(fault.New(tt.code, "r", "m")); got != tt.want {
			t.Errorf("status of %s = %d, want %d", tt.code, got, tt.want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"minimal event", `{"id":"evt_1","object":"event","type":"charge.refunded","api_version":"2024-06-20","livemode":true,"created":1}`, true},
		{"null api_version", `{"id":"evt_1","object":"event","type":"charge.refunded","api_version":null}`, true},
		{"not json", `hello`, false},
		{"array", `[1,2]`, false},
		{"trailing garbage", `{"id":"evt_1","object":"event","type":"a.b"} x`, false},
		{"not an event object", `{"id":"evt_1","object":"charge","type":"a.b"}`, false},
		{"no id", `{"object":"event","type":"a.b"}`, false},
		{"not evt_ id", `{"id":"ch_1","object":"event","type":"a.b"}`, false},
		{"id with separator", `{"id":"evt_1.2","object":"event","type":"a.b"}`, false},
		{"wildcard type", `{"id":"evt_1","object":"event","type":"charge.*"}`, false},
		{"empty type", `{"id":"evt_1","object":"event","type":""}`, false},
		{"livemode wrong type", `{"id":"evt_1","object":"event","type":"a.b","livemode":"yes"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeEvent([]byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("decodeEvent = %+v, %v; want ok=%v", ev, err, tt.ok)
			}
			if err != nil && (fault.CodeOf(err) != fault.Invalid || fault.ReasonOf(err) != ReasonInvalidPayload) {
				t.Errorf("error %v is not invalid/invalid_payload", err)
			}
		})
	}
}

// FuzzVerifyMatchesStripe checks the edge's own v1 signature check against
// stripe-go's (webhook.ValidatePayloadIgnoringTolerance) for every header the
// edge accepts as well-formed. One signing key serves all inputs, so a pooled
// HMAC state that was not reset properly would show as a mismatch.
func FuzzVerifyMatchesStripe(f *testing.F) {
	const secret = "whsec_fuzz"
	body := []byte(`{"id":"evt_1","object":"event","type":"charge.refunded"}`)
	at := time.Unix(1_800_000_000, 0)
	sig := hex.EncodeToString(webhook.ComputeSignature(at, body, secret))
	f.Add(fmt.Sprintf("t=%d,v1=%s", at.Unix(), sig), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s", at.Unix(), strings.ToUpper(sig)), body)
	f.Add(fmt.Sprintf("t=+0%d,v1=%s", at.Unix(), sig), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s,v1=zz,v0=%s,x=", at.Unix(), sig, sig), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s", at.Unix()+1, sig), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s", at.Unix(), sig[:62]), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s00", at.Unix(), sig), body)
	f.Add(fmt.Sprintf("t=%d,v1=%sg", at.Unix(), sig[:63]), body)
	f.Add(fmt.Sprintf("v1=%s,t=%d", sig, at.Unix()), body)
	f.Add(fmt.Sprintf("t=%d,v1=%s", at.Unix(), sig), []byte{})
	key := newSigningKey(secret)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ts, err := signatureTimestamp(header)
		if err != nil {
			return // refused as malformed before any signature is checked
		}
		got := key.signs(header, ts.Unix(), body)
		want := webhook.ValidatePayloadIgnoringTolerance(body, header, secret) == nil
		if got != want {
			t.Fatalf("edge says signed=%v, stripe-go says %v, for header %q", got, want, header)
		}
	})
}
