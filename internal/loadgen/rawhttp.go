package loadgen

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
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
// edge throughput the edge never lost. Responses are read by readResponse
// (status line, the three headers it needs, a Content-Length body skipped):
// http.ReadResponse's header map and body reader were a third of the
// poster's remaining CPU. Only http:// URLs; RunEdge uses net/http for others.
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
	status, closing, err := readResponse(rc.br)
	if err != nil {
		return 0, err
	}
	if closing {
		_ = rc.c.Close()
		rc.c = nil
	}
	return status, nil
}

// readResponse reads one HTTP/1.x response to a POST from br and skips its
// body. It understands what a server answering a webhook sends: a status
// line, headers, and a body of Content-Length bytes (or none, for 204 and
// 304). A chunked or length-less body is an error rather than a guess, and
// the caller drops the connection. closing reports "Connection: close" or an
// HTTP/1.0 answer without keep-alive.
func readResponse(br *bufio.Reader) (status int, closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n": version, space, three digits, then a space or the end.
	if len(line) < 14 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		(line[12] != ' ' && line[12] != '\r') {
		return 0, false, fmt.Errorf("loadgen: malformed status line %q", bytes.TrimSpace(line))
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, false, fmt.Errorf("loadgen: malformed status line %q", bytes.TrimSpace(line))
	}
	if status < 200 {
		return 0, false, fmt.Errorf("loadgen: informational response %d is not expected", status)
	}
	closing = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive
	length := int64(-1)
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte{':'})
		if !ok {
			return 0, false, fmt.Errorf("loadgen: malformed header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("loadgen: malformed Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			return 0, false, fmt.Errorf("loadgen: Transfer-Encoding %q is not supported", value)
		case asciiEqualFold(name, "Connection"):
			switch {
			case asciiEqualFold(value, "close"):
				closing = true
			case asciiEqualFold(value, "keep-alive"):
				closing = false
			}
		}
	}
	switch {
	case length >= 0:
		_, err = br.Discard(int(length))
	case status == http.StatusNoContent || status == http.StatusNotModified:
	default:
		err = fmt.Errorf("loadgen: %d response without Content-Length", status)
	}
	if err != nil {
		return 0, false, err
	}
	return status, closing, nil
}

// asciiEqualFold is bytes.EqualFold for an ASCII s, without the Unicode tables.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
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
