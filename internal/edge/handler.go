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
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/fault"
	"github.com/paystream/paystream/internal/obs"
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

// Handler is the public webhook http.Handler. Create it with New.
type Handler struct {
	// Now is the clock for signature tolerance and receipt times; tests may
	// replace it before the first request.
	Now func() time.Time

	endpoints      map[string]endpoint // by URL path
	pub            *streams.Publisher
	bodies         bodyPool
	verifier       Verifier
	limiter        *limiter // nil: rate limiting off
	trusted        []netip.Prefix
	maxBody        int64
	publishTimeout time.Duration
	m              *Metrics
	log            *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// New returns the webhook handler for cfg's endpoints, publishing with js.
// Only the edge settings of cfg are used (not the listeners); the all-in-one
// dev mode mounts the result on its own server.
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
	event    envelope
	dup      bool
	seq      uint64
}

// ServeHTTP handles one webhook. The checks run cheapest first, and the body
// is read only once the request is known to be for an endpoint, by a client
// within its rate, with a signature header present.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.Now()
	h.m.InFlight.Inc()
	defer h.m.InFlight.Dec()

	req := &request{id: requestID(r.Header.Get(HeaderRequestID)), endpoint: unknownEndpoint}
	r, span := startSpan(r)
	setResponseHeaders(w.Header(), req.id)

	err := h.handle(w, r, req, start)
	status := http.StatusOK
	if err != nil {
		status = fault.HTTPStatus(err)
		h.m.Rejections.WithLabelValues(req.endpoint, fault.ReasonOf(err)).Inc()
		writeJSON(w, status, errorBody{Error: publicMessage(err), RequestID: req.id})
	} else {
		writeAccepted(w, req.event.ID, req.dup, req.id)
	}
	elapsed := h.Now().Sub(start)
	h.m.Requests.WithLabelValues(req.endpoint, strconv.Itoa(status)).Inc()
	obs.Observe(r.Context(), h.m.RequestDuration.WithLabelValues(req.endpoint), elapsed.Seconds())
	h.logRequest(r, req, status, err, elapsed)
	endSpan(span, req, status, err)
}

// handle runs the checks in order and publishes; a non-nil error is a
// *fault.Error whose code decides the status.
func (h *Handler) handle(w http.ResponseWriter, r *http.Request, req *request, start time.Time) error {
	req.client = clientIP(r, h.trusted)
	if h.limiter != nil {
		if ok, wait := h.limiter.allow(limiterKey(req.client), start); !ok {
			// Whole seconds, rounded up: Retry-After has no fractions and
			// "0" would invite an immediate retry.
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			if ep, ok := h.endpoints[r.URL.Path]; ok {
				req.endpoint = ep.name
			}
			return fault.New(fault.RateLimited, ReasonRateLimited, "rate limit exceeded")
		}
	}
	ep, ok := h.endpoints[r.URL.Path]
	if !ok {
		return fault.New(fault.NotFound, ReasonUnknownEndpoint, "no webhook endpoint at this path")
	}
	req.endpoint = ep.name
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fault.New(fault.NotAllowed, ReasonMethodNotAllowed, "only POST is allowed")
	}
	sig := r.Header.Get(headerSignature)
	if sig == "" {
		return fault.New(fault.Invalid, ReasonMissingSignature, "Stripe-Signature header is missing")
	}
	if _, err := signatureTimestamp(sig); err != nil {
		return err // malformed: refuse before reading the body
	}
	buf, err := h.bodies.readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	// The signature is checked against the raw bytes before anything in them
	// is believed; an unverified body is never parsed, published or logged.
	if err := h.verifier.verify(sig, buf.b, ep.keys); err != nil {
		h.bodies.put(buf)
		return err
	}
	env, err := decodeEnvelope(buf.b) // copies what it keeps
	if err != nil {
		h.bodies.put(buf)
		return err
	}
	req.event = env
	if err := h.publish(r.Context(), req, buf.b, start); err != nil {
		// The message may still be in the client's hands (an ack that did
		// not come in time, a retry after "no responders"), with buf as its
		// data: leave the buffer to the garbage collector.
		return err
	}
	h.bodies.put(buf) // acknowledged: nothing references the body any more
	return nil
}

// publish stores the verified event and waits for its PubAck. The wait is
// bounded by the publish timeout but not by the client's context: a client
// that hangs up does not change whether the event was stored, and the metric
// and log line should say which.
func (h *Handler) publish(ctx context.Context, req *request, body []byte, received time.Time) error {
	pubStart := h.Now()
	res, err := h.pub.PublishWithin(ctx, streams.Event{
		ID:         req.event.ID,
		Type:       req.event.Type,
		APIVersion: req.event.APIVersion,
		Livemode:   req.event.Livemode,
		Created:    req.event.Created,
		Endpoint:   req.endpoint,
		ReceivedAt: received,
		RequestID:  req.id,
	}, body, h.publishTimeout)
	obs.Observe(ctx, h.m.PublishDuration.WithLabelValues(req.endpoint), h.Now().Sub(pubStart).Seconds())
	if err != nil {
		if errors.Is(err, streams.ErrUnavailable) {
			h.m.PublishErrors.WithLabelValues(req.endpoint).Inc()
			return fault.Wrap(err, fault.Unavailable, ReasonUnavailable, "event store unavailable")
		}
		// Msg refused the event (cannot happen after decodeEnvelope's checks).
		return fault.Wrap(err, fault.Internal, "publish_rejected", "event could not be published")
	}
	req.dup, req.seq = res.Duplicate, res.Sequence
	h.m.Published.WithLabelValues(req.endpoint, req.event.Type, strconv.FormatBool(res.Duplicate)).Inc()
	return nil
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
// answer. The map is filled directly, with canonical keys, and the values are
// slices of one array: Header.Set allocated a slice per header
// (TestResponseHeadersAsHeaderSetWrites compares the two).
func setResponseHeaders(h http.Header, requestID string) {
	v := &[...]string{requestID, "nosniff", "no-store", "default-src 'none'; frame-ancestors 'none'", "no-referrer", "DENY"}
	h[HeaderRequestID] = v[0:1:1] // cap 1: an Add copies instead of overwriting the next value
	h["X-Content-Type-Options"] = v[1:2:2]
	h["Cache-Control"] = v[2:3:3]
	h["Content-Security-Policy"] = v[3:4:4]
	h["Referrer-Policy"] = v[4:5:5]
	h["X-Frame-Options"] = v[5:6:6]
}

// writeJSON answers status with v as one line of JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own small structs: cannot fail
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	// b and the newline in two writes into the response's buffer rather than
	// append(b, '\n'), which copied b: json.Marshal returns a slice without
	// spare capacity.
	writeBody(w, status, b, "\n")
}

// writeAccepted answers 200 with the acceptedBody of an accepted event,
// byte for byte what writeJSON writes, without encoding/json's reflection
// on the path every accepted webhook takes: the ids are copied in as they
// are when they need no escaping, which validation guarantees (an event id
// passed streams.ValidEventID, a request id is requestID's charset or a
// UUID). Anything else still goes through writeJSON.
func writeAccepted(w http.ResponseWriter, eventID string, dup bool, requestID string) {
	if !jsonPlain(eventID) || !jsonPlain(requestID) {
		writeJSON(w, http.StatusOK, acceptedBody{Status: "accepted", EventID: eventID, Duplicate: dup, RequestID: requestID})
		return
	}
	const head, mid, tail = `{"status":"accepted","event_id":"`, `","duplicate":`, `,"request_id":"`
	b := make([]byte, 0, len(head)+len(eventID)+len(mid)+len("false")+len(tail)+len(requestID)+len("\"}\n"))
	b = append(b, head...)
	b = append(b, eventID...)
	b = append(b, mid...)
	b = strconv.AppendBool(b, dup)
	b = append(b, tail...)
	b = append(b, requestID...)
	b = append(b, "\"}\n"...)
	writeBody(w, http.StatusOK, b, "")
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

// writeBody answers status with the JSON text b followed by tail.
func writeBody(w http.ResponseWriter, status int, b []byte, tail string) {
	vals := &[...]string{"application/json", strconv.Itoa(len(b) + len(tail))}
	h := w.Header()
	h["Content-Type"], h["Content-Length"] = vals[0:1:1], vals[1:2:2] // as setResponseHeaders
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if tail != "" {
		_, _ = io.WriteString(w, tail) // net/http's and httptest's writers take a string as is
	}
}

// logRequest writes the one log line of a request. It never contains the
// body, the signature header or a secret; the event fields are logged only
// once the signature verified (req.event is empty before).
func (h *Handler) logRequest(r *http.Request, req *request, status int, err error, elapsed time.Duration) {
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
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", truncate(r.URL.Path, 128)))
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
func requestID(in string) string {
	if len(in) > 0 && len(in) <= 128 && strings.IndexFunc(in, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-')
	}) < 0 {
		return in
	}
	return uuid.NewString()
}

// truncate bounds attacker-controlled text before it reaches a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
