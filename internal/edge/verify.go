package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paystream/paystream/internal/fault"
)

// Rejection reasons: the reason label of paystream_edge_rejections_total and
// the Reason of the fault.Error behind every non-2xx answer.
const (
	ReasonMissingSignature   = "missing_signature"
	ReasonMalformedSignature = "malformed_signature"
	ReasonBadSignature       = "bad_signature"
	ReasonStaleTimestamp     = "stale_timestamp"
	ReasonFutureTimestamp    = "future_timestamp"
	ReasonInvalidPayload     = "invalid_payload"
	ReasonHeaderTooLarge     = "header_too_large"
	ReasonReadTimeout        = "read_timeout"
	ReasonMalformedRequest   = "malformed_request"
	ReasonTooLarge           = "too_large"
	ReasonRateLimited        = "rate_limited"
	ReasonUnknownEndpoint    = "unknown_endpoint"
	ReasonMethodNotAllowed   = "method_not_allowed"
	ReasonUnavailable        = "unavailable"
)

// Verifier checks Stripe-Signature headers against an endpoint's secrets.
//
// The signature is Stripe's v1 scheme as stripe-go checks it
// (webhook.ValidatePayloadIgnoringTolerance: HMAC-SHA256 of "<t>.<body>",
// compared in constant time with every v1 signature of the header; a v1 value
// that is not hex is ignored). It is computed here rather than by stripe-go
// so that the HMAC state of each secret is reused between requests instead
// of rebuilt (stripe-go allocates a new HMAC, the parsed header and its
// signatures per call); FuzzVerifyMatchesStripe checks the two agree. The
// timestamp window is checked here too because stripe-go measures age with
// time.Since: it lets any FUTURE timestamp through and cannot be driven by a
// test clock.
type Verifier struct {
	Tolerance time.Duration    // accepted |now - t|
	Now       func() time.Time // the clock; time.Now in production
}

// Verify returns nil when header carries a v1 signature of body made with one
// of secrets at a time within the tolerance. Order of checks, and why:
//  1. header missing or not a t=…,v1=… list → Invalid (400): a client bug,
//     not an attack on a secret, and cheap to tell apart.
//  2. no v1 signature matches any secret → Unauthenticated (401). A header
//     with only v0 (or unknown) schemes lands here too.
//  3. signed, but the timestamp is stale or in the future → Unauthenticated
//     (401). Checking it after the signature makes stale_timestamp mean
//     "a genuine Stripe signature, too old" (replay or clock skew), which an
//     operator can act on, instead of mixing it with forgeries.
//
// The body is not parsed here; it is parsed only after it verified.
func (v Verifier) Verify(header string, body []byte, secrets []string) error {
	keys := make([]*signingKey, len(secrets))
	for i, s := range secrets {
		keys[i] = newSigningKey(s)
	}
	return v.verify(header, body, keys)
}

// verify is Verify with the endpoint's signing keys, whose HMAC states are
// reused across requests.
func (v Verifier) verify(header string, body []byte, keys []*signingKey) error {
	if header == "" {
		return fault.New(fault.Invalid, ReasonMissingSignature, "Stripe-Signature header is missing")
	}
	ts, err := signatureTimestamp(header)
	if err != nil {
		return err
	}
	// signatureTimestamp accepted the header's shape, which is stricter than
	// stripe-go's parser: its ErrInvalidHeader and ErrNotSigned cannot occur
	// past this point, only "no valid signature".
	matched := false
	for _, k := range keys {
		if k.signs(header, ts.Unix(), body) {
			matched = true
			break
		}
		// No match: try the next secret (rotation).
	}
	if !matched {
		return fault.New(fault.Unauthenticated, ReasonBadSignature, "no v1 signature matches the endpoint's secret")
	}
	now := v.now()
	switch {
	case now.Sub(ts) > v.Tolerance:
		return fault.New(fault.Unauthenticated, ReasonStaleTimestamp, "signature timestamp is older than the tolerance of %s", v.Tolerance)
	case ts.Sub(now) > v.Tolerance:
		return fault.New(fault.Unauthenticated, ReasonFutureTimestamp, "signature timestamp is more than %s in the future", v.Tolerance)
	}
	return nil
}

// signingKey is one endpoint secret with a pool of HMAC-SHA256 states keyed
// with it. hmac.New costs two SHA-256 states and the padded key blocks;
// Reset on a used state only restores the precomputed inner state.
type signingKey struct {
	secret []byte
	macs   sync.Pool // *macState
}

// macState is an HMAC with scratch space for the signed prefix and the sum,
// kept with it so that neither escapes per call.
type macState struct {
	mac     hash.Hash
	scratch [32]byte
	sum     [sha256.Size]byte
	sig     [sha256.Size]byte
}

func newSigningKey(secret string) *signingKey {
	return &signingKey{secret: []byte(secret)}
}

// signs reports whether one of header's v1 signatures is the HMAC of
// "<ts>.<body>" with k. ts is formatted as stripe-go formats it (%d of the
// parsed value, so "t=+01" signs "1").
func (k *signingKey) signs(header string, ts int64, body []byte) bool {
	st, ok := k.macs.Get().(*macState)
	if !ok {
		st = &macState{mac: hmac.New(sha256.New, k.secret)}
	}
	defer k.macs.Put(st)
	st.mac.Reset()
	prefix := append(strconv.AppendInt(st.scratch[:0], ts, 10), '.')
	st.mac.Write(prefix)
	st.mac.Write(body)
	expected := st.mac.Sum(st.sum[:0])

	for pair := range strings.SplitSeq(header, ",") {
		name, val, _ := strings.Cut(pair, "=")
		// A v1 value that is not hex is skipped, as stripe-go does; one that
		// decodes to another length can never match.
		if name != signingScheme || len(val) != 2*sha256.Size || !decodeHex(st.sig[:], val) {
			continue
		}
		if hmac.Equal(expected, st.sig[:]) {
			return true
		}
	}
	return false
}

// signingScheme is the only signature scheme Stripe signs webhooks with.
const signingScheme = "v1"

// decodeHex decodes the hex string s into dst (len(dst) == len(s)/2) and
// reports whether s was valid hex, without converting s to a []byte.
func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (v Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// signatureTimestamp checks the shape of a Stripe-Signature header
// ("t=1700000000,v1=hex,v1=hex,v0=hex": comma-separated key=value pairs with
// exactly one integer t) and returns t. stripe-go accepts a header without t
// (as the year 1970) and takes the last of several; both are malformed here.
func signatureTimestamp(header string) (time.Time, error) {
	malformed := func(why string) error {
		return fault.New(fault.Invalid, ReasonMalformedSignature, "Stripe-Signature header is malformed: %s", why)
	}
	var ts int64
	seenT := false
	for pair := range strings.SplitSeq(header, ",") {
		k, val, ok := strings.Cut(pair, "=")
		if !ok || k == "" || strings.Contains(val, "=") {
			return time.Time{}, malformed("not a list of key=value pairs")
		}
		if k != "t" {
			continue
		}
		if seenT {
			return time.Time{}, malformed("more than one t")
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n <= 0 || n > 1<<40 {
			return time.Time{}, malformed("t is not a unix timestamp")
		}
		ts, seenT = n, true
	}
	if !seenT {
		return time.Time{}, malformed("no t")
	}
	return time.Unix(ts, 0), nil
}
