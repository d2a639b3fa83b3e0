package loadgen

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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
	u, addr, err := rawTarget(rawURL)
	if err != nil {
		return nil, err
	}
	return &webhookPoster{addr: addr, host: u.Host, path: u.RequestURI(), secret: []byte(secret),
		conns: make(chan *rawConn, conc)}, nil
}

// rawTarget parses an http:// URL for the raw clients and returns it with
// the host:port to dial.
func rawTarget(rawURL string) (*url.URL, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "http" {
		return nil, "", fmt.Errorf("loadgen: raw client only speaks http://, not %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return u, addr, nil
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
	status, closing, _, err = readResponseBody(br, false, nil)
	return status, closing, err
}

// readResponseBody is readResponse that, when keep is set, appends the
// body to dst and returns it instead of skipping it.
func readResponseBody(br *bufio.Reader, keep bool, dst []byte) (status int, closing bool, body []byte, err error) {
	body = dst
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, dst, err
	}
	// "HTTP/1.1 200 OK\r\n": version, space, three digits, then a space or the end.
	if len(line) < 14 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		(line[12] != ' ' && line[12] != '\r') {
		return 0, false, dst, fmt.Errorf("loadgen: malformed status line %q", bytes.TrimSpace(line))
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, false, dst, fmt.Errorf("loadgen: malformed status line %q", bytes.TrimSpace(line))
	}
	if status < 200 {
		return 0, false, dst, fmt.Errorf("loadgen: informational response %d is not expected", status)
	}
	closing = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive
	length := int64(-1)
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, dst, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte{':'})
		if !ok {
			return 0, false, dst, fmt.Errorf("loadgen: malformed header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, dst, fmt.Errorf("loadgen: malformed Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			return 0, false, dst, fmt.Errorf("loadgen: Transfer-Encoding %q is not supported", value)
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
	case length >= 0 && keep:
		n := len(body)
		body = slices.Grow(body, int(length))[:n+int(length)]
		_, err = io.ReadFull(br, body[n:])
	case length >= 0:
		_, err = br.Discard(int(length))
	case status == http.StatusNoContent || status == http.StatusNotModified:
	default:
		err = fmt.Errorf("loadgen: %d response without Content-Length", status)
	}
	if err != nil {
		return 0, false, dst, err
	}
	return status, closing, body, nil
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

// apiGetter sends GET requests with a bearer key over keep-alive HTTP/1.1
// connections it writes and reads itself, one request in flight per
// connection, for the API bench: the same economy as webhookPoster (no
// transport, no goroutines per connection, no header maps), so the load
// client takes as little of the shared machine as it can. Only http://.
type apiGetter struct {
	addr, host, auth string
	conns            chan *rawConn // idle connections, one per worker at most
}

func newAPIGetter(base, key string, conc int) (*apiGetter, error) {
	u, addr, err := rawTarget(base)
	if err != nil {
		return nil, err
	}
	return &apiGetter{addr: addr, host: u.Host, auth: "Bearer " + key, conns: make(chan *rawConn, conc)}, nil
}

// get sends GET path and returns the status and the body, appended to
// dst[:0].
func (g *apiGetter) get(path string, dst []byte) (int, []byte, error) {
	var rc *rawConn
	select {
	case rc = <-g.conns:
	default:
		rc = &rawConn{}
	}
	status, body, err := g.roundTrip(rc, path, dst[:0])
	if err != nil && rc.c != nil {
		_ = rc.c.Close()
		rc.c = nil
	}
	select {
	case g.conns <- rc:
	default:
		if rc.c != nil {
			_ = rc.c.Close()
		}
	}
	return status, body, err
}

func (g *apiGetter) roundTrip(rc *rawConn, path string, dst []byte) (int, []byte, error) {
	if rc.c == nil {
		c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
		if err != nil {
			return 0, dst, err
		}
		rc.c, rc.br = c, bufio.NewReaderSize(c, 4<<10)
	}
	b := append(rc.req[:0], "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, g.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, g.auth...)
	b = append(b, "\r\n\r\n"...)
	rc.req = b
	if err := rc.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, dst, err
	}
	if _, err := rc.c.Write(b); err != nil {
		return 0, dst, err
	}
	status, closing, body, err := readResponseBody(rc.br, true, dst)
	if err != nil {
		return 0, dst, err
	}
	if closing {
		_ = rc.c.Close()
		rc.c = nil
	}
	return status, body, nil
}

// close closes the idle connections.
func (g *apiGetter) close() {
	for {
		select {
		case rc := <-g.conns:
			if rc.c != nil {
				_ = rc.c.Close()
			}
		default:
			return
		}
	}
}
