package loadgen

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// webhookPoster posts signed webhooks over keep-alive HTTP/1.1 connections
// it writes and reads itself, one request in flight per connection, like
// wrk or h2load: the load tool shares the machine with the edge it measures,
// and net/http's client (transport, connection pool, a goroutine pair per
// connection, a fresh HMAC per signature) cost about 50 CPU-µs per request,
// more than half of what the edge spends on it, which then showed up as
// edge throughput the edge never lost. Responses are parsed with
// http.ReadResponse. Only http:// URLs; RunEdge uses net/http for others.
type webhookPoster struct {
	addr, host, path string
	secret           []byte
	conns            chan *rawConn // idle connections, one per worker at most
}

func newWebhookPoster(rawURL, secret string, conc int) (*webhookPoster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("loadgen: raw client only speaks http://, not %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &webhookPoster{addr: addr, host: u.Host, path: u.RequestURI(), secret: []byte(secret),
		conns: make(chan *rawConn, conc)}, nil
}

// rawConn is one connection with its buffers and signing state.
type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	mac hash.Hash
	sig []byte
}

// post sends body signed at now and returns the response status.
func (w *webhookPoster) post(body []byte, now time.Time) (int, error) {
	var rc *rawConn
	select {
	case rc = <-w.conns:
	default:
		rc = &rawConn{mac: hmac.New(sha256.New, w.secret)}
	}
	status, err := w.roundTrip(rc, body, now)
	if err != nil && rc.c != nil {
		_ = rc.c.Close()
		rc.c = nil
	}
	select {
	case w.conns <- rc:
	default:
		if rc.c != nil {
			_ = rc.c.Close()
		}
	}
	return status, err
}

func (w *webhookPoster) roundTrip(rc *rawConn, body []byte, now time.Time) (int, error) {
	if rc.c == nil {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		rc.c, rc.br = c, bufio.NewReaderSize(c, 4<<10)
	}
	// Stripe's v1 scheme: HMAC-SHA256 of "<unix time>.<body>".
	ts := strconv.AppendInt(nil, now.Unix(), 10)
	rc.mac.Reset()
	rc.mac.Write(ts)
	rc.mac.Write([]byte{'.'})
	rc.mac.Write(body)
	rc.sig = rc.mac.Sum(rc.sig[:0])

	b := append(rc.req[:0], "POST "...)
	b = append(b, w.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.host...)
	b = append(b, "\r\nContent-Type: application/json; charset=utf-8\r\nStripe-Signature: t="...)
	b = append(b, ts...)
	b = append(b, ",v1="...)
	b = hex.AppendEncode(b, rc.sig)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	rc.req = b

	if err := rc.c.SetDeadline(now.Add(30 * time.Second)); err != nil {
		return 0, err
	}
	if _, err := rc.c.Write(b); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.Close {
		_ = rc.c.Close()
		rc.c = nil
	}
	return resp.StatusCode, nil
}

// close closes the idle connections.
func (w *webhookPoster) close() {
	for {
		select {
		case rc := <-w.conns:
			if rc.c != nil {
				_ = rc.c.Close()
			}
		default:
			return
		}
	}
}
