package edge

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestLimiterAllowsPerMinuteAndRefills(t *testing.T) {
	l := newLimiter(60, 0) // one per second, burst 60
	now := time.Unix(1_800_000_000, 0)
	for i := range 60 {
		if ok, _ := l.allow("1.2.3.4", now); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.allow("1.2.3.4", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("61st request = %v, wait %s; want refused with wait in (0,1s]", ok, wait)
	}
	if ok, _ := l.allow("5.6.7.8", now); !ok {
		t.Fatal("another client shares the first client's bucket")
	}
	// A refused request does not consume a future token.
	if ok, _ := l.allow("1.2.3.4", now.Add(time.Second)); !ok {
		t.Fatal("no token after one second")
	}
	if newLimiter(0, 0) != nil {
		t.Fatal("rate limit 0 must turn the limiter off")
	}
}

func TestLimiterIsBoundedUnderAddressFlood(t *testing.T) {
	l := newLimiter(10, 1000)
	now := time.Unix(1_800_000_000, 0)
	for i := range 50_000 {
		l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if n := l.size(); n != 1000 {
		t.Fatalf("table holds %d clients, want the bound 1000", n)
	}
	// Idle clients go first: after a minute of quiet, one new client clears them.
	l.allow("192.0.2.1", now.Add(2*time.Minute))
	if n := l.size(); n != 1 {
		t.Fatalf("table holds %d clients after idle eviction, want 1", n)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured ignores XFF", "203.0.113.9:5000", []string{"1.1.1.1"}, nil, "203.0.113.9"},
		{"untrusted peer ignores XFF", "203.0.113.9:5000", []string{"1.1.1.1"}, trusted, "203.0.113.9"},
		{"trusted peer: client from XFF", "10.0.0.2:5000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"spoofed left entries ignored", "10.0.0.2:5000", []string{"6.6.6.6, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"chain of trusted proxies skipped", "10.0.0.2:5000", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, trusted, "198.51.100.7"},
		{"garbage stops the walk", "10.0.0.2:5000", []string{"198.51.100.7, nonsense"}, trusted, "10.0.0.2"},
		{"all trusted: leftmost", "10.0.0.2:5000", []string{"10.3.3.3"}, trusted, "10.3.3.3"},
		{"no XFF from proxy", "10.0.0.2:5000", nil, trusted, "10.0.0.2"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, trusted, "2001:db8::1"},
		{"4in6 peer unmapped", "[::ffff:10.0.0.2]:1", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr fasthttp.RequestHeader
			for _, v := range tt.xff {
				hdr.Add("X-Forwarded-For", v)
			}
			if got := clientIP(remoteAddr(tt.remote), &hdr, tt.trusted).String(); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLimiterKeyGroupsIPv6By64(t *testing.T) {
	a := limiterKey(netip.MustParseAddr("2001:db8:1:2::1"))
	b := limiterKey(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	c := limiterKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Errorf("keys %q %q %q: want the same /64 together and others apart", a, b, c)
	}
	if k := limiterKey(netip.MustParseAddr("192.0.2.1")); k != "192.0.2.1" {
		t.Errorf("ipv4 key = %q", k)
	}
}

func TestRequestID(t *testing.T) {
	if got := requestID([]byte("abc-123.X:y_z")); got != "abc-123.X:y_z" {
		t.Errorf("sane id replaced: %q", got)
	}
	for _, bad := range []string{"", "a b", "x\r\nSet-Cookie: y", string(make([]byte, 129))} {
		if got := requestID([]byte(bad)); got == bad || len(got) != 36 {
			t.Errorf("requestID(%q) = %q, want a fresh uuid", bad, got)
		}
	}
}
