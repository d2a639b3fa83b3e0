package edge

import (
	"container/list"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// DefaultMaxClients bounds the limiter table. Each entry is ~200 bytes, so the
// table stays under ~15 MiB whatever a flood of source addresses does.
const DefaultMaxClients = 65536

// limiter is a per-client token bucket table with a hard size bound.
//
// Each client gets a bucket of perMinute tokens refilled at perMinute/60 per
// second, so a quiet client may burst a full minute's quota (Stripe retries
// arrive in bursts after an outage) but sustains no more than the limit.
//
// The table is an LRU list: every use moves a client to the front; idle
// clients (untouched for longer than a full refill, so dropping them loses no
// state) are evicted from the back on every insert, and when the table is full
// of active clients the least recently seen is evicted. A flood of distinct
// addresses therefore costs bounded memory; its price is that evicted clients
// start over with a full bucket, which fails open (more requests allowed), not
// closed (legitimate Stripe traffic refused).
type limiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	idle    time.Duration
	max     int
	clients map[string]*list.Element
	lru     *list.List // of *bucket, front = most recently used
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// newLimiter returns a limiter of perMinute requests per client, or nil when
// perMinute is 0 (rate limiting off).
func newLimiter(perMinute, maxClients int) *limiter {
	if perMinute <= 0 {
		return nil
	}
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &limiter{
		limit:   rate.Limit(float64(perMinute) / 60),
		burst:   perMinute,
		idle:    time.Minute,
		max:     maxClients,
		clients: make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// allow takes one token for key at now. When none is left it returns false
// and how long until one is.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.clients[key]; ok {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
	} else {
		l.evict(now)
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = l.lru.PushFront(b)
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request must not consume future tokens
		return false, d
	}
	return true, 0
}

// evict drops idle clients from the back, then the least recently used ones
// until there is room for one more.
func (l *limiter) evict(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.seen) <= l.idle && l.lru.Len() < l.max {
			return
		}
		l.lru.Remove(e)
		delete(l.clients, b.key)
	}
}

// size is the number of clients tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// clientIP returns the address of the client whose TCP peer is peer, with
// request header hdr. X-Forwarded-For is believed only when the peer is a
// trusted proxy; then the list is walked from the right (the entry our proxy
// appended) past every trusted hop, and the first untrusted address is the
// client. Entries left of it are whatever the client claimed and are
// ignored, so a client cannot choose its own key.
func clientIP(peer netip.Addr, hdr *fasthttp.RequestHeader, trusted []netip.Prefix) netip.Addr {
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	hops := forwardedFor(hdr.PeekAll("X-Forwarded-For"))
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last address we could trust
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client
}

func forwardedFor(values [][]byte) []string {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(string(v), ",")...)
	}
	return hops
}

// peerAddr is the TCP peer of c.
func peerAddr(c *fasthttp.RequestCtx) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return remoteAddr(c.RemoteAddr().String())
}

func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limiterKey is the bucket key of a client: the IPv4 address, or the /64 of
// an IPv6 address, since one IPv6 host usually controls a whole /64 and could
// otherwise get a fresh bucket per request.
func limiterKey(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
