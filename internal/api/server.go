package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/stripeclient"
	"github.com/paystream/paystream/internal/subscription"
)

// Routes of the API, as net/http patterns. The OpenAPI document lists
// exactly these (openapi_test.go checks it).
const (
	RouteCreateCheckout = "POST /v1/checkout/sessions"
	RouteAccess         = "GET /v1/customers/{customer}/access/{content}"
	RoutePurchases      = "GET /v1/customers/{customer}/purchases"
	RoutePurchase       = "GET /v1/purchases/{id}"

	RouteSubscriptionCheckout = "POST /v1/subscriptions/checkout"
	RouteSubscriptions        = "GET /v1/customers/{customer}/subscriptions"
	RouteCancelSubscription   = "POST /v1/subscriptions/{id}/cancel"
	RouteResumeSubscription   = "POST /v1/subscriptions/{id}/resume"
	RoutePortalSession        = "POST /v1/customers/{customer}/portal_sessions"
)

// Routes returns every route pattern the server registers.
func Routes() []string {
	return append([]string{RouteCreateCheckout, RouteAccess, RoutePurchases, RoutePurchase,
		RouteSubscriptionCheckout, RouteSubscriptions, RouteCancelSubscription, RouteResumeSubscription, RoutePortalSession},
		payoutRoutes()...)
}

// catchAll answers every request no route matches with the JSON 404, so
// even those get the one error shape.
const catchAll = "/"

// maxBodyBytes bounds a request body; a checkout request is a few hundred
// bytes.
const maxBodyBytes = 64 << 10

// Server is the purchase API's handler; internal/app serves it on its
// listener, beside the admin listener.
type Server struct {
	db      *bun.DB
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	stripe  checkoutCreator
	billing billingClient
	keys    keyring
	limiter *keyLimiter
	handler http.Handler
	// checks answers the access route (access_batch.go) over the access
	// statements, one check and many.
	checks             *accessBatcher
	accessOne, accessN *accessStmt
}

// New builds the API over db (migrated; see migrations.Up) from cfg,
// registering its metrics on reg. It connects to nothing: Stripe is called
// per request that needs it (checkouts, subscription changes, portal).
func New(db *bun.DB, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{db: db, cfg: cfg, log: log, metrics: NewMetrics(reg),
		keys: newKeyring(cfg.Keys), limiter: newKeyLimiter(len(cfg.Keys), cfg.RateLimit)}
	sc, err := stripeclient.New(cfg.stripe(), log)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.stripe, s.billing = newStripeCheckouts(sc), newStripeBilling(sc)
	s.accessOne = &accessStmt{db: db.DB, query: subscription.AccessQuery}
	s.accessN = &accessStmt{db: db.DB, query: subscription.AccessBatchQuery}
	s.checks = newAccessBatcher(s.accessOne, s.accessN, cfg.Now, cfg.AccessBatch, s.metrics.AccessBatchSize)
	s.checks.start(cfg.AccessWorkers)
	// Authentication runs inside each route, after the mux matched it, so
	// a refused request is still counted under its route.
	mux := http.NewServeMux()
	mux.Handle(RouteCreateCheckout, s.authenticate(http.HandlerFunc(s.createCheckout)))
	mux.Handle(RouteAccess, s.authenticate(http.HandlerFunc(s.access)))
	mux.Handle(RoutePurchases, s.authenticate(http.HandlerFunc(s.purchases)))
	mux.Handle(RoutePurchase, s.authenticate(http.HandlerFunc(s.purchase)))
	mux.Handle(RouteSubscriptionCheckout, s.authenticate(http.HandlerFunc(s.createSubscriptionCheckout)))
	mux.Handle(RouteSubscriptions, s.authenticate(http.HandlerFunc(s.subscriptions)))
	mux.Handle(RouteCancelSubscription, s.authenticate(http.HandlerFunc(s.cancelSubscription)))
	mux.Handle(RouteResumeSubscription, s.authenticate(http.HandlerFunc(s.resumeSubscription)))
	mux.Handle(RoutePortalSession, s.authenticate(http.HandlerFunc(s.createPortalSession)))
	if err := s.handlePayouts(mux); err != nil {
		return nil, err
	}
	mux.HandleFunc(catchAll, func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(CodeNotFound, "no route %s %s; see the OpenAPI document", r.Method, r.URL.Path))
	})
	s.handler = s.observe(mux)
	return s, nil
}

// Handler is the API's HTTP handler (authentication, rate limit, request
// ids, metrics and logs included).
func (s *Server) Handler() http.Handler { return s.handler }

// WriteTimeout is how long answering one request may take: a checkout
// waits for Stripe (with retries), and the listener's write timeout must
// outlast that so the caller gets the 502/503 rather than a reset.
func (s *Server) WriteTimeout() time.Duration {
	return time.Duration(s.cfg.StripeMaxNetworkRetries+1)*s.cfg.StripeTimeout + 10*time.Second
}

// Close stops the access check's workers and releases what the server
// prepared on the database (the access statements). Call it once the
// listener stopped serving, before the database closes.
func (s *Server) Close() error {
	s.checks.Close()
	if err := errors.Join(s.accessOne.Close(), s.accessN.Close()); err != nil {
		return fmt.Errorf("api: close the access statements: %w", err)
	}
	return nil
}

// ctxKey keys the request-scoped values.
type ctxKey int

const ctxRequestID ctxKey = 0

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// observe gives each request an id (X-Request-Id, the caller's when it is
// sane), counts it by route pattern and status, times it and logs it.
// Neither the Authorization header nor the body is ever logged.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r2 := r.WithContext(context.WithValue(r.Context(), ctxRequestID, id))
		s.metrics.InFlight.Inc()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			s.metrics.InFlight.Dec()
			if p := recover(); p != nil {
				s.log.Error("api handler panicked", "request_id", id, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					s.fail(sw, r2, errorf(CodeInternal, "internal error; request id %s", id))
				}
			}
			route := r2.Pattern // set by the mux on the request it was given
			if route == "" || route == catchAll {
				route = unmatchedRoute
			}
			d := time.Since(start)
			s.metrics.Requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			s.metrics.RequestDuration.WithLabelValues(route).Observe(d.Seconds())
			lvl := slog.LevelDebug
			if sw.status >= 500 {
				lvl = slog.LevelWarn
			}
			s.log.Log(r2.Context(), lvl, "api request", "request_id", id, "method", r.Method, "route", route,
				"status", sw.status, "duration_ms", math.Round(d.Seconds()*1e6)/1e3)
		}()
		next.ServeHTTP(sw, r2)
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// authenticate admits requests whose bearer key matches one of API_KEYS,
// then applies the per-key rate limit.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := s.keys.match(r.Header.Get("Authorization"))
		if i < 0 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="paystream"`)
			s.fail(w, r, errorf(CodeUnauthorized, "send Authorization: Bearer <key> with one of the keys of API_KEYS"))
			return
		}
		if s.limiter != nil {
			if ok, wait := s.limiter.allow(i, s.cfg.Now()); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				s.fail(w, r, errorf(CodeRateLimited, "rate limit of %d requests per minute for this key reached", s.cfg.RateLimit))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fail writes err as the error body with its status, logging the cause of
// a 5xx.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = wrapErr(err, CodeInternal, "internal error")
	}
	if e.Code == CodeInternal || e.Code == CodeUnavailable || e.err != nil {
		id, _ := r.Context().Value(ctxRequestID).(string)
		s.log.Warn("api request failed", "request_id", id, "code", e.Code, "error", err)
	}
	writeJSON(w, e.Status(), errorBody{Error: e})
}
