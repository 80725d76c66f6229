// Package api serves Warden's HTTP API (INTERFACES.md): health, metrics,
// events (paged and as Server-Sent Events), media, device and camera status,
// dead letters. Dependencies are small interfaces defined here; *store.Store
// satisfies Events, Media and DeadLetters. Later features mount their routes
// with Handle and push live messages with PublishLive.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// Events is the event log the API reads; *store.Store implements it.
type Events interface {
	Read(after uint64, limit int, f store.Filter) ([]event.Event, uint64, error)
	ReadBack(before uint64, limit int, f store.Filter) ([]event.Event, uint64, error)
	LastSeq() uint64
	// Tail is a named reader that wakes on commit and reports its lag.
	Tail(name string, after uint64) *store.Tail
}

// Media opens stored snapshots and clips; *store.Store implements it.
type Media interface {
	OpenMedia(id string) (*os.File, store.MediaInfo, error)
}

// DeadLetters lists messages that could not be turned into events; *store.Store implements it.
type DeadLetters interface {
	DeadLetters(after uint64, limit int) ([]store.DeadLetterRecord, error)
}

// Check is one readiness check; Fn returns nil when the part is ready.
type Check struct {
	Name string
	Fn   func() error
}

// ErrNotFound is what a provider (camera snapshot) returns for an unknown id.
var ErrNotFound = errors.New("not found")

// Options are the dependencies of a Server. Nil providers make their routes
// answer 503.
type Options struct {
	Events      Events
	Media       Media
	DeadLetters DeadLetters
	Devices     func() []DeviceStatus
	Cameras     func() []CameraStatus
	// Snapshot returns the latest JPEG of a camera and when it was taken;
	// an error wrapping ErrNotFound means no such camera.
	Snapshot func(ctx context.Context, cameraID string) ([]byte, time.Time, error)
	// Recent returns the last d of a camera's stream as an MP4 (no
	// re-encoding); ErrNotFound as for Snapshot.
	Recent func(ctx context.Context, cameraID string, d time.Duration) ([]byte, error)
	Ready  []Check
	// Followers reports each event-log follower's lag (store.FollowerLag),
	// shown on /readyz to authenticated callers.
	Followers func() map[string]uint64
	// ReadyTimeout bounds each readiness check (default 2s): a probe gets
	// an answer even when a check hangs (a store stuck on a dead disk).
	ReadyTimeout time.Duration

	Tokens        []config.Token
	SessionAuth   SessionAuth
	MetricsPublic bool
	MaxBodyBytes  int64 // default 1 MiB

	Gatherer   prometheus.Gatherer   // for /metrics; nil = prometheus.DefaultGatherer
	Registerer prometheus.Registerer // for the API's own metrics; nil = not registered
	Logger     *slog.Logger

	// Zero means the default in parentheses.
	ReadHeaderTimeout time.Duration // (10s)
	ReadTimeout       time.Duration // (30s)
	WriteTimeout      time.Duration // (60s) not applied to SSE streams
	IdleTimeout       time.Duration // (120s)
	ShutdownTimeout   time.Duration // (10s)
	Heartbeat         time.Duration // SSE comment interval (15s)
	SSEWriteTimeout   time.Duration // one SSE write may take this long (30s)
	LiveRing          int           // live messages kept for resume (256)
}

// Server is the HTTP API. Create it with New.
type Server struct {
	opts    Options
	log     *slog.Logger
	met     *metrics
	tokens  Tokens
	mux     *http.ServeMux
	mounted map[string]bool // patterns Mount has served
	live    *liveHub

	running []atomic.Bool // per readiness check: a run is in flight

	closeMu   sync.Mutex
	closing   chan struct{} // closed when Serve starts shutting down
	closeOnce sync.Once
	streams   sync.WaitGroup
}

// New builds a Server with the routes of INTERFACES.md. Invalid tokens are
// logged (by name) and ignored; config validation rejects them earlier.
func New(o Options) *Server {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 10*time.Second)
	def(&o.ReadTimeout, 30*time.Second)
	def(&o.WriteTimeout, 60*time.Second)
	def(&o.IdleTimeout, 120*time.Second)
	def(&o.ShutdownTimeout, 10*time.Second)
	def(&o.Heartbeat, 15*time.Second)
	def(&o.SSEWriteTimeout, 30*time.Second)
	def(&o.ReadyTimeout, 2*time.Second)
	if o.LiveRing <= 0 {
		o.LiveRing = 256
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{
		opts:    o,
		log:     o.Logger,
		met:     newMetrics(o.Registerer),
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
		running: make([]atomic.Bool, len(o.Ready)),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "api")
	s.live = newLiveHub(o.LiveRing, o.Events)
	s.tokens = ParseTokens(o.Tokens, func(err error) { s.log.Error("api: ignoring token", "err", err) })
	s.mounted = map[string]bool{}
	s.Mount(Handlers{})
	return s
}

// Handle mounts h at pattern (Go ServeMux syntax, e.g. "POST /api/v1/alarms/{id}/ack")
// behind authentication for role, the body limit, panic recovery and
// metrics. It panics on a duplicate pattern, like ServeMux. Call it before
// Serve. The gateway's routes are declared in routes.go and served by
// Mount; Handle is for a test's own.
func (s *Server) Handle(pattern string, role Role, h http.Handler) {
	s.mux.Handle(pattern, s.instrument(pattern, s.guard(pattern, role, h)))
}

// Handler returns the whole API as an http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// serveHTTP answers unrouted requests with JSON 404/405.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pat := s.mux.Handler(r); pat != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &codeOnly{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r) // redirects pass through; 404/405 are only recorded
	if rec.code != http.StatusNotFound && rec.code != http.StatusMethodNotAllowed {
		return
	}
	s.met.requests.WithLabelValues("unmatched", strconv.Itoa(rec.code)).Inc()
	if rec.code == http.StatusMethodNotAllowed {
		WriteError(w, Errorf(rec.code, CodeMethod, "method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	WriteError(w, Errorf(rec.code, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
}

// codeOnly swallows the mux's plain-text 404/405 (keeping the status and the
// Allow header) and passes anything else, such as path-cleaning redirects, through.
type codeOnly struct {
	http.ResponseWriter
	code int
}

func (c *codeOnly) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	if !c.swallow() {
		c.ResponseWriter.WriteHeader(code)
	}
}

func (c *codeOnly) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.swallow() {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

func (c *codeOnly) swallow() bool {
	return c.code == http.StatusNotFound || c.code == http.StatusMethodNotAllowed
}

// statusWriter records the status for metrics and whether headers are out.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument adds metrics, panic recovery and the body limit around h.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.met.panics.Inc()
				s.log.Error("api: handler panic", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.code == 0 {
					WriteError(sw, Errorf(http.StatusInternalServerError, CodeInternal, "internal error"))
				} else {
					// Headers are out; the only honest signal left is a broken response.
					sw.code = http.StatusInternalServerError
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.met.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			if route != streamRoute {
				s.met.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			}
		}()
		if r.ContentLength > s.opts.MaxBodyBytes {
			WriteError(sw, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over %d bytes", s.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
		h.ServeHTTP(sw, r)
	})
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully:
// SSE streams are told to end, in-flight requests get ShutdownTimeout to
// finish, after which connections are closed. When Serve returns no goroutine
// of the server is left. Call Serve at most once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("api: listening", "addr", ln.Addr().String())

	var err error
	select {
	case err = <-errc:
		// Listener failed; still stop streams below.
	case <-ctx.Done():
	}
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		close(s.closing)
		s.closeMu.Unlock()
	})
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		s.log.Warn("api: shutdown timed out, closing connections", "err", serr)
		_ = srv.Close()
	}
	if err == nil {
		err = <-errc
	}
	// Handlers may outlive Close; streams watch s.closing and write deadlines.
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownTimeout):
		s.log.Warn("api: SSE streams still running after shutdown timeout")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	}
	return nil
}
