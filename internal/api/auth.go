package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// keyring holds the accepted bearer keys as SHA-256 digests: comparing
// fixed-length digests in constant time reveals neither a key's content nor
// its length through timing.
type keyring struct {
	digests [][sha256.Size]byte
}

func newKeyring(keys []string) keyring {
	k := keyring{digests: make([][sha256.Size]byte, len(keys))}
	for i, key := range keys {
		k.digests[i] = sha256.Sum256([]byte(key))
	}
	return k
}

// match returns the index of the key the Authorization header carries, or
// -1. Every key is compared, matched or not, so the time does not say which
// key (or whether an early one) matched.
func (k keyring) match(authorization string) int {
	const prefix = "Bearer "
	if len(authorization) <= len(prefix) || !strings.EqualFold(authorization[:len(prefix)], prefix) {
		return -1
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(authorization[len(prefix):])))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	return found
}

// keyLimiter is a token bucket per API key: perMinute tokens refilled
// evenly, so a quiet client may burst a minute's quota. The key set is fixed
// by the configuration, so unlike the edge's per-IP table it needs no
// eviction; its Allow shape matches the edge's limiter.
type keyLimiter struct {
	buckets []*rate.Limiter // each safe for concurrent use
}

// newKeyLimiter returns a limiter for n keys, or nil when perMinute is 0.
func newKeyLimiter(n, perMinute int) *keyLimiter {
	if perMinute <= 0 {
		return nil
	}
	l := &keyLimiter{buckets: make([]*rate.Limiter, n)}
	for i := range l.buckets {
		l.buckets[i] = rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)
	}
	return l
}

// allow takes a token of key i at now; when none is left it says how long
// until one is.
func (l *keyLimiter) allow(i int, now time.Time) (bool, time.Duration) {
	r := l.buckets[i].ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request must not consume future tokens
		return false, d
	}
	return true, 0
}
