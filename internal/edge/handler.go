// Package edge is paystream's Stripe webhook receiver: it verifies each
// request's Stripe-Signature against the raw body, publishes the event to the
// JetStream stream STRIPE_EVENTS with the event id as Nats-Msg-Id, and answers
// 200 only after JetStream acknowledged it. Everything else is refused with
// the status of the design contract, and never reaches the stream.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/stripeevent"
	"github.com/paystream/paystream/streams"
)

// Route prefix of the webhook endpoints: /webhooks/stripe is the endpoint
// streams.DefaultEndpoint, /webhooks/stripe/<name> the endpoint <name>.
const (
	RoutePrefix     = "/webhooks/stripe"
	HeaderRequestID = "X-Request-Id"
	headerSignature = "Stripe-Signature"
)

// endpoint is one configured webhook endpoint.
type endpoint struct {
	name string
	keys []*signingKey // its secrets; more than one during a rotation
}

// Handler is the public webhook handler: Serve is the public listener's
// fasthttp.RequestHandler and ServeError its ErrorHandler (newServer wires
// both). Create it with New.
type Handler struct {
	// Now is the clock for signature tolerance and receipt times; tests may
	// replace it before the first request.
	Now func() time.Time

	endpoints      map[string]endpoint // by URL path
	pub            *streams.Publisher
	verifier       Verifier
	limiter        *limiter // nil: rate limiting off
	trusted        []netip.Prefix
	maxBody        int64
	publishTimeout time.Duration
	m              *Metrics
	log            *slog.Logger
}

// New returns the webhook handler for cfg's endpoints, publishing with js.
// Only the edge settings of cfg are used (not the listeners).
func New(cfg Config, js jetstream.JetStream, m *Metrics, log *slog.Logger) (*Handler, error) {
	switch {
	case js == nil:
		return nil, errors.New("edge: nil JetStream")
	case m == nil:
		return nil, errors.New("edge: nil Metrics")
	case log == nil:
		return nil, errors.New("edge: nil logger")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	h := &Handler{
		Now:            time.Now,
		endpoints:      make(map[string]endpoint, len(cfg.Endpoints)),
		pub:            streams.NewPublisher(js),
		limiter:        newLimiter(cfg.RateLimit, DefaultMaxClients),
		trusted:        cfg.TrustedProxies,
		maxBody:        cfg.MaxBodyBytes,
		publishTimeout: cfg.PublishTimeout,
		m:              m,
		log:            log,
	}
	h.verifier = Verifier{Tolerance: cfg.Tolerance, Now: func() time.Time { return h.Now() }}
	for name, secrets := range cfg.Endpoints {
		if !streams.ValidEndpoint(name) {
			return nil, fmt.Errorf("edge: endpoint name %q is not a valid subject token", name)
		}
		if len(secrets) == 0 {
			return nil, fmt.Errorf("edge: endpoint %q has no secret", name)
		}
		path := RoutePrefix + "/" + name
		if name == streams.DefaultEndpoint {
			path = RoutePrefix
		}
		ep := endpoint{name: name, keys: make([]*signingKey, len(secrets))}
		for i, s := range secrets {
			ep.keys[i] = newSigningKey(s)
		}
		h.endpoints[path] = ep
	}
	return h, nil
}

// request is what one webhook request learns on its way, for the final
// metric and log line.
type request struct {
	id       string
	endpoint string // label value: a configured name or "unknown"
	client   netip.Addr
	event    stripeevent.Event // once the body verified and decoded
	dup      bool
	seq      uint64
}

// Serve handles one webhook whose header and body the server has read. The
// checks run cheapest first; the body is looked at only once the request is
// known to be for an endpoint, by a client within its rate, with a signature
// header present.
func (h *Handler) Serve(c *fasthttp.RequestCtx) { h.serve(c, nil) }

// ServeError answers a request the server could not read, so that it gets
// the same JSON error body, request id, metrics and log line as any other
// refusal (fasthttp would otherwise answer in plain text by itself). A
// Content-Length over the limit arrives here with the header read and the
// body not: the checks before the body still decide first, and only then is
// it 413. A body that turns out longer than the limit while it is read
// (chunked) is 413 at once: the server has dropped its header by then. Any
// other read error (a malformed request, a header over the buffer, a client
// too slow to send its request) is a 400 before any check, since the header
// may be incomplete.
func (h *Handler) ServeError(c *fasthttp.RequestCtx, err error) {
	if err == nil {
		err = errors.New("unknown read error")
	}
	h.serve(c, err)
}

// serve is Serve, or ServeError with readErr.
func (h *Handler) serve(c *fasthttp.RequestCtx, readErr error) {
	start := h.Now()
	h.m.InFlight.Inc()
	defer h.m.InFlight.Dec()

	req := &request{id: requestID(c.Request.Header.Peek(HeaderRequestID)), endpoint: unknownEndpoint}
	ctx, span := startSpan(c)
	setResponseHeaders(&c.Response.Header, req.id)

	var err error
	switch {
	case readErr == nil:
		err = h.handle(ctx, c, req, start, nil)
	case errors.Is(readErr, fasthttp.ErrBodyTooLarge) && int64(c.Request.Header.ContentLength()) > h.maxBody:
		err = h.handle(ctx, c, req, start, readErr)
	default:
		req.client = peerAddr(c)
		err = h.unreadable(readErr)
	}
	status := http.StatusOK
	if err != nil {
		status = fault.HTTPStatus(err)
		h.m.Rejections.WithLabelValues(req.endpoint, fault.ReasonOf(err)).Inc()
		writeJSON(&c.Response, status, errorBody{Error: publicMessage(err), RequestID: req.id})
	} else {
		writeAccepted(&c.Response, req.event.ID, req.dup, req.id)
	}
	elapsed := h.Now().Sub(start)
	h.m.Requests.WithLabelValues(req.endpoint, strconv.Itoa(status)).Inc()
	obs.Observe(ctx, h.m.RequestDuration.WithLabelValues(req.endpoint), elapsed.Seconds())
	h.logRequest(c, req, status, err, elapsed)
	endSpan(span, req, status, err)
}

// tooLarge is the refusal of a body over the limit (the server's
// ErrBodyTooLarge).
func (h *Handler) tooLarge(err error) error {
	return fault.Wrap(err, fault.TooLarge, ReasonTooLarge, fmt.Sprintf("body is larger than %d bytes", h.maxBody))
}

// unreadable classifies a request the server could not read.
func (h *Handler) unreadable(err error) error {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return h.tooLarge(err)
	case errors.As(err, &small):
		return fault.Wrap(err, fault.Invalid, ReasonHeaderTooLarge, fmt.Sprintf("request header is larger than %d bytes", maxHeaderBytes))
	case errors.As(err, &ne) && ne.Timeout():
		return fault.Wrap(err, fault.Invalid, ReasonReadTimeout, "request not received in time")
	default:
		return fault.Wrap(err, fault.Invalid, ReasonMalformedRequest, "malformed HTTP request")
	}
}

// handle runs the checks in order and publishes; a non-nil error is a
// *fault.Error whose code decides the status. bodyErr is the server's
// ErrBodyTooLarge when the body was over the limit, else nil.
func (h *Handler) handle(ctx context.Context, c *fasthttp.RequestCtx, req *request, start time.Time, bodyErr error) error {
	req.client = clientIP(peerAddr(c), &c.Request.Header, h.trusted)
	path := c.Path()
	if h.limiter != nil {
		if ok, wait := h.limiter.allow(limiterKey(req.client), start); !ok {
			// Whole seconds, rounded up: Retry-After has no fractions and
			// "0" would invite an immediate retry.
			c.Response.Header.Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			if ep, ok := h.endpoints[string(path)]; ok {
				req.endpoint = ep.name
			}
			return fault.New(fault.RateLimited, ReasonRateLimited, "rate limit exceeded")
		}
	}
	ep, ok := h.endpoints[string(path)]
	if !ok {
		return fault.New(fault.NotFound, ReasonUnknownEndpoint, "no webhook endpoint at this path")
	}
	req.endpoint = ep.name
	if !c.IsPost() {
		c.Response.Header.Set("Allow", http.MethodPost)
		return fault.New(fault.NotAllowed, ReasonMethodNotAllowed, "only POST is allowed")
	}
	sig := string(c.Request.Header.Peek(headerSignature))
	if sig == "" {
		return fault.New(fault.Invalid, ReasonMissingSignature, "Stripe-Signature header is missing")
	}
	if _, err := signatureTimestamp(sig); err != nil {
		return err // malformed: refused whatever the body
	}
	if bodyErr != nil {
		return h.tooLarge(bodyErr)
	}
	// The server's buffer, reused for the connection's next request once
	// Serve returns; nothing below keeps a slice of it past that unless it
	// detaches it first.
	body := c.Request.Body()
	// The signature is checked against the raw bytes before anything in them
	// is believed; an unverified body is never parsed, published or logged.
	if err := h.verifier.verify(sig, body, ep.keys); err != nil {
		return err
	}
	ev, err := decodeEvent(body) // copies what it keeps but the body
	if err != nil {
		return err
	}
	ev.Endpoint, ev.ReceivedAt, ev.RequestID = req.endpoint, start, req.id
	req.event = ev
	if err := h.publish(ctx, req); err != nil {
		// The message may still be in the client's hands (an ack that did
		// not come in time, a retry after "no responders") with body as its
		// data: take the body from the server, which would otherwise reuse
		// it, and leave it to the garbage collector.
		c.Request.SwapBody(nil)
		return err
	}
	return nil // acknowledged: nothing references the body any more
}

// publish stores the verified event and waits for its PubAck. The wait is
// bounded by the publish timeout but not by the client's context: a client
// that hangs up does not change whether the event was stored, and the metric
// and log line should say which.
func (h *Handler) publish(ctx context.Context, req *request) error {
	pubStart := h.Now()
	res, err := h.pub.PublishWithin(ctx, req.event, h.publishTimeout)
	obs.Observe(ctx, h.m.PublishDuration.WithLabelValues(req.endpoint), h.Now().Sub(pubStart).Seconds())
	if err != nil {
		if errors.Is(err, streams.ErrUnavailable) {
			h.m.PublishErrors.WithLabelValues(req.endpoint).Inc()
			return fault.Wrap(err, fault.Unavailable, ReasonUnavailable, "event store unavailable")
		}
		// Msg refused the event (cannot happen after decodeEvent's checks).
		return fault.Wrap(err, fault.Internal, "publish_rejected", "event could not be published")
	}
	req.dup, req.seq = res.Duplicate, res.Sequence
	h.m.Published.WithLabelValues(req.endpoint, req.event.Type, strconv.FormatBool(res.Duplicate)).Inc()
	return nil
}

// decodeEvent parses a verified body into the event to publish. Any API
// version is accepted (and recorded); the body must be one JSON object with
// object "event", an evt_ id and a type that can be a subject token. This is
// the trust boundary where the id is validated: everything after the edge
// takes the id from the headers the edge writes from it.
func decodeEvent(body []byte) (stripeevent.Event, error) {
	ev, err := stripeevent.Parse(body)
	switch {
	case errors.Is(err, stripeevent.ErrNotEvent):
		return stripeevent.Event{}, fault.New(fault.Invalid, ReasonInvalidPayload, "body is not a Stripe event: object is not \"event\"")
	case err != nil:
		return stripeevent.Event{}, fault.Wrap(err, fault.Invalid, ReasonInvalidPayload, "body is not a Stripe event JSON object")
	case !streams.ValidEventID(ev.ID):
		return stripeevent.Event{}, fault.New(fault.Invalid, ReasonInvalidPayload, "body is not a Stripe event: id is not an evt_ id")
	case !streams.ValidEventType(ev.Type):
		return stripeevent.Event{}, fault.New(fault.Invalid, ReasonInvalidPayload, "body is not a Stripe event: type is not an event type")
	case len(ev.APIVersion) > 64:
		return stripeevent.Event{}, fault.New(fault.Invalid, ReasonInvalidPayload, "body is not a Stripe event: api_version is too long")
	}
	return ev, nil
}

// publicMessage is the error text a client sees: the classified message
// without the wrapped cause, which may describe our infrastructure.
func publicMessage(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Msg != "" {
		return fe.Msg
	}
	return http.StatusText(fault.HTTPStatus(err))
}

type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

type acceptedBody struct {
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
	RequestID string `json:"request_id"`
}

// setResponseHeaders sets the request id and the security headers of every
// answer.
func setResponseHeaders(h *fasthttp.ResponseHeader, requestID string) {
	h.Set(HeaderRequestID, requestID)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// writeJSON answers status with v as one line of JSON.
func writeJSON(r *fasthttp.Response, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own small structs: cannot fail
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	writeBody(r, status)
	r.AppendBody(b)
	r.AppendBodyString("\n")
}

// writeAccepted answers 200 with the acceptedBody of an accepted event,
// byte for byte what writeJSON writes, without encoding/json's reflection
// on the path every accepted webhook takes: the ids are copied in as they
// are when they need no escaping, which validation guarantees (an event id
// passed streams.ValidEventID, a request id is requestID's charset or a
// UUID). Anything else still goes through writeJSON.
func writeAccepted(r *fasthttp.Response, eventID string, dup bool, requestID string) {
	if !jsonPlain(eventID) || !jsonPlain(requestID) {
		writeJSON(r, http.StatusOK, acceptedBody{Status: "accepted", EventID: eventID, Duplicate: dup, RequestID: requestID})
		return
	}
	writeBody(r, http.StatusOK)
	r.AppendBodyString(`{"status":"accepted","event_id":"`)
	r.AppendBodyString(eventID)
	if dup {
		r.AppendBodyString(`","duplicate":true,"request_id":"`)
	} else {
		r.AppendBodyString(`","duplicate":false,"request_id":"`)
	}
	r.AppendBodyString(requestID)
	r.AppendBodyString("\"}\n")
}

// jsonPlain reports whether encoding/json writes s as it is between quotes:
// printable ASCII without '"', '\\' and the HTML characters it escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// writeBody starts a JSON answer with status; the body is appended after.
// The server sets Content-Length from the body.
func writeBody(r *fasthttp.Response, status int) {
	r.SetStatusCode(status)
	r.Header.SetContentType("application/json")
	r.ResetBody()
}

// logRequest writes the one log line of a request. It never contains the
// body, the signature header or a secret; the event fields are logged only
// once the signature verified (req.event is empty before).
func (h *Handler) logRequest(c *fasthttp.RequestCtx, req *request, status int, err error, elapsed time.Duration) {
	// Room for every attribute below, on the stack: growing a slice from
	// five was three allocations and most of the line's garbage.
	var buf [13]slog.Attr
	attrs := append(buf[:0],
		slog.String("request_id", req.id),
		slog.String("endpoint", req.endpoint),
		slog.Int("status", status),
		slog.String("client_ip", req.client.String()),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	if req.endpoint == unknownEndpoint {
		attrs = append(attrs, slog.String("method", truncate(string(c.Method()), 16)), slog.String("path", truncate(string(c.Path()), 128)))
	}
	if req.event.ID != "" {
		attrs = append(attrs,
			slog.String("stripe_event_id", req.event.ID),
			slog.String("event_type", req.event.Type),
			slog.String("api_version", req.event.APIVersion),
			slog.Bool("livemode", req.event.Livemode))
	}
	level, msg := slog.LevelInfo, "webhook accepted"
	if err != nil {
		level, msg = slog.LevelWarn, "webhook rejected"
		attrs = append(attrs, slog.String("reason", fault.ReasonOf(err)), slog.String("error", err.Error()))
		if status >= 500 {
			level = slog.LevelError
		}
	} else {
		attrs = append(attrs, slog.Bool("duplicate", req.dup), slog.Uint64("stream_seq", req.seq))
	}
	h.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// requestID returns the inbound X-Request-Id when it is sane (1–128 of
// [A-Za-z0-9._:-]; anything else could inject into headers or logs), else a
// new random one.
func requestID(in []byte) string {
	if len(in) == 0 || len(in) > 128 {
		return uuid.NewString()
	}
	for _, c := range in {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return uuid.NewString()
		}
	}
	return string(in) // a copy: the server reuses in
}

// truncate bounds attacker-controlled text before it reaches a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
