// Package httpguard hardens the HTTP servers of a bridge and of the proxy
// (client API and admin port) against what a slow, greedy or foreign
// client can do to them: request bodies bounded per request (refused by
// Content-Length before they are read) and in total (a byte budget: 503
// with Retry-After when it is spent), a read deadline on every body, idle
// and header timeouts, a connection limit, and refusal of the requests a
// browser page on the host could send cross-site (a POST without
// Content-Type: application/json, an Origin that is not the server's own
// loopback origin).
//
// # Why these numbers
//
// A body must arrive within BodyTimeout plus its length at MinBodyRate
// (1 MiB/s, far below loopback speed): a client trickling a body holds its
// connection for seconds, not forever. The connection limit (MaxConns)
// keeps the process below its file descriptor limit, so its own dials and
// files never fail; keep-alive clients already connected are not affected
// when it is reached.
package httpguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

const (
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection with no request for this
	// long.
	IdleTimeout = time.Minute
	// BodyTimeout plus the body's length at MinBodyRate is how long a
	// body may take to arrive.
	BodyTimeout = 10 * time.Second
	// MinBodyRate is the slowest body accepted, bytes per second.
	MinBodyRate = 1 << 20
	// DefaultMaxConns is the connection limit of a server.
	DefaultMaxConns = 4096
	// DefaultBodyBudget is how many bytes of request bodies a server
	// admits at once (each counted from its admission to its answer).
	DefaultBodyBudget = 256 << 20
)

// NewServer is an http.Server for h with the header and idle timeouts.
// Bodies get their read deadline from Bodies; a hijacked connection (the
// frames upgrade) has no deadline: net/http clears it on Hijack.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: HeaderTimeout, IdleTimeout: IdleTimeout}
}

// Bodies admits request bodies: at most Max bytes each (default
// fsop.DefaultMaxRequest) and Budget bytes in all at once (default
// DefaultBodyBudget), counted in its metrics.
type Bodies struct {
	Max    int64
	Budget int64
	// Timeout is BodyTimeout unless a test shortens it.
	Timeout time.Duration
	sem     *semaphore.Weighted
	inUse   prometheus.Gauge
	refuse  *prometheus.CounterVec
}

// NewBodies makes a Bodies (limit, budget <= 0: the defaults) whose metrics
// go to reg (nil: none): lighthouse_http_body_bytes_admitted and
// lighthouse_http_requests_refused_total{reason}.
func NewBodies(limit, budget int64, reg prometheus.Registerer) *Bodies {
	if limit <= 0 {
		limit = fsop.DefaultMaxRequest
	}
	if budget <= 0 {
		budget = DefaultBodyBudget
	}
	budget = max(budget, limit) // one body of the largest size always fits
	b := &Bodies{Max: limit, Budget: budget, Timeout: BodyTimeout, sem: semaphore.NewWeighted(budget),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lighthouse_http_body_bytes_admitted",
			Help: "Bytes of request bodies admitted and not yet answered (bounded by the body budget)."}),
		refuse: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lighthouse_http_requests_refused_total",
			Help: "Requests refused before their body was read: too_large (413), budget (503), content_type (415), origin (403)."},
			[]string{"reason"}),
	}
	if reg != nil {
		b.inUse = register(reg, b.inUse)
		b.refuse = register(reg, b.refuse)
	}
	return b
}

// register registers c, or returns the collector already registered under
// its name (a second handler on the same registry shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

// JSON guards a handler of POSTed JSON (the client API): the request must
// say Content-Type: application/json (415) and come from no foreign Origin
// (403); a Content-Length over Max is 413 before anything is read; the
// body's bytes (Max if the length is unknown) must fit in the budget (503
// with Retry-After: 1 otherwise) and arrive in time (a read deadline). The
// handler still bounds what it reads by Max (a body without
// Content-Length).
func (b *Bodies) JSON(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !b.allowed(w, r) {
			return
		}
		b.Admit(h)(w, r)
	}
}

// allowed checks the Origin and Content-Type of r, answering and counting
// a refusal.
func (b *Bodies) allowed(w http.ResponseWriter, r *http.Request) bool {
	if err := CheckOrigin(r); err != nil {
		b.refuse.WithLabelValues("origin").Inc()
		writeError(w, http.StatusForbidden, err)
		return false
	}
	if err := CheckJSON(r); err != nil {
		b.refuse.WithLabelValues("content_type").Inc()
		writeError(w, http.StatusUnsupportedMediaType, err)
		return false
	}
	return true
}

// Admit bounds the body of r by Max (413 by Content-Length), the budget
// (503) and the read deadline, without looking at its type.
func (b *Bodies) Admit(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := r.ContentLength
		if n > b.Max {
			b.refuse.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes is larger than %d bytes", n, b.Max))
			return
		}
		if n < 0 {
			n = b.Max
		}
		if !b.sem.TryAcquire(n) {
			b.refuse.WithLabelValues("budget").Inc()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("too many request bodies being read at once (budget %d bytes): retry", b.Budget))
			return
		}
		b.inUse.Add(float64(n))
		defer func() {
			b.inUse.Sub(float64(n))
			b.sem.Release(n)
		}()
		if n > 0 {
			// An error means the connection cannot take deadlines
			// (HTTP/2 in tests): the body is then bounded by size only.
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(b.Timeout + bodyTime(n)))
		}
		h(w, r)
	}
}

// bodyTime is how long n bytes take at MinBodyRate.
func bodyTime(n int64) time.Duration {
	return time.Duration(n) * time.Second / MinBodyRate
}

// CheckJSON refuses a request whose Content-Type is not application/json
// (parameters such as charset allowed): a browser page cannot send that
// cross-site without a CORS preflight, which these servers never answer.
func CheckJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q: send Content-Type: application/json", ct)
	}
	return nil
}

// CheckOrigin refuses a request with an Origin header other than the
// server's own loopback origin (http://127.0.0.1:PORT, http://localhost:PORT
// or http://[::1]:PORT, the Host it was sent to): a page from elsewhere
// must not drive the API through the user's browser. Requests without
// Origin (curl, Go clients, Prometheus) pass.
func CheckOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	host := r.Host
	if origin == "http://"+host && isLoopback(host) {
		return nil
	}
	return fmt.Errorf("request from origin %q refused: only requests from the server's own loopback origin (or without Origin) are served", origin)
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SameOrigin guards a handler with CheckOrigin only (403).
func SameOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := CheckOrigin(r); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		h(w, r)
	}
}

// PostJSON guards an admin POST: CheckOrigin (403), then CheckJSON (415).
func PostJSON(h http.HandlerFunc) http.HandlerFunc {
	return SameOrigin(func(w http.ResponseWriter, r *http.Request) {
		if err := CheckJSON(r); err != nil {
			writeError(w, http.StatusUnsupportedMediaType, err)
			return
		}
		h(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
