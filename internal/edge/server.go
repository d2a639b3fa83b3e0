package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Public listener limits. Stripe sends small JSON bodies with a handful of
// headers from well-connected servers, so anything slow or large is hostile.
const (
	headerTimeout  = 5 * time.Second  // from a new connection, or a request's first byte, to the end of its header
	bodyTimeout    = 15 * time.Second // from the end of the header to the end of up to 1 MiB of body
	idleTimeout    = 60 * time.Second // between requests on a kept-alive connection
	writeTimeout   = 10 * time.Second // the answer; starts once the handler returned
	maxHeaderBytes = 32 << 10         // the connection's read buffer, which the header must fit
)

// limits are the public listener's timeouts; tests shorten them.
type limits struct {
	header, body, idle, write time.Duration
}

func defaultLimits() limits {
	return limits{header: headerTimeout, body: bodyTimeout, idle: idleTimeout, write: writeTimeout}
}

// Server is the public webhook listener's HTTP server around a Handler,
// with the limits a public endpoint needs.
//
// It is fasthttp, not net/http, against the style guide's habit: the edge's
// CPU per event is its cost, and on the 2-core benchmark machine net/http's
// request parsing, response writing and per-request allocations were the
// largest part of it; the same handler behind fasthttp accepted more webhooks
// per second at less CPU per event (docs/benchmarks.md). The admin listener,
// which is not on the webhook path, stays on net/http.
type Server struct{ fs *fasthttp.Server }

// NewServer returns the public listener's server around h.
func NewServer(h *Handler, log *slog.Logger) *Server { return newServer(h, log, defaultLimits()) }

// newServer is NewServer with the timeouts lim.
func newServer(h *Handler, log *slog.Logger, lim limits) *Server {
	return &Server{fs: &fasthttp.Server{
		Handler:      h.Serve,
		ErrorHandler: h.ServeError,
		// fasthttp has one read deadline per request, set at its first
		// byte (or when the connection opens): ReadTimeout is the header's
		// time, and HeaderReceived moves the deadline for the body, as
		// net/http's ReadHeaderTimeout and ReadTimeout did. The publish
		// wait is not under WriteTimeout, which starts once the handler
		// returned.
		ReadTimeout: lim.header,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: lim.body}
		},
		IdleTimeout:        lim.idle,
		WriteTimeout:       lim.write,
		ReadBufferSize:     maxHeaderBytes,
		MaxRequestBodySize: int(h.maxBody),
		// Webhooks are JSON: never parse a body as a form.
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// Connection-level failures (a peer resetting, a write timing out)
		// that no handler saw; requests that failed to parse went through
		// ServeError, with their own log line.
		Logger: fasthttpLogger{log},
	}}
}

// Serve serves the connections ln accepts until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fs.Serve(quietListener{ln}) }

// Shutdown stops accepting, closes the idle connections, lets each request
// in flight finish (waiting for its PubAck) and answer with "Connection:
// close", and returns once every connection is gone or ctx ends. It closes
// only a listener Serve has begun on: the caller closes its listener too.
func (s *Server) Shutdown(ctx context.Context) error { return s.fs.ShutdownWithContext(ctx) }

// quietListener hands the server connections that keep quiet while no byte
// has arrived on them: fasthttp answers a first request that does not
// arrive in time with the ErrorHandler's 400, even when not a byte of it
// came. HTTP clients and proxies open connections ahead of need, and one
// that sends its request as that 400 arrives takes it for the answer (Stripe
// would count a failed delivery). net/http closes such a connection without
// a word, and so does the edge: the deadline passing on a connection that
// never spoke reads as the peer closing it. A request that had started still
// gets its timeout answer; kept-alive connections fasthttp closes quietly
// itself.
type quietListener struct{ net.Listener }

func (l quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &quietConn{Conn: c}, nil
}

// quietConn is a connection of quietListener.
type quietConn struct {
	net.Conn
	spoke bool // a byte has arrived; only the connection's serving goroutine reads
}

func (c *quietConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.spoke = true
	}
	var ne net.Error
	if err != nil && !c.spoke && errors.As(err, &ne) && ne.Timeout() {
		return n, io.EOF
	}
	return n, err
}

// fasthttpLogger sends the server's own messages to slog at debug level:
// they are about peers that reset or stall connections outside any request,
// which a public endpoint sees all day; at warn they would drown the access
// lines.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("http server", "detail", fmt.Sprintf(format, args...))
	}
}
