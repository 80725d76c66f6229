// Package camera supervises one camera: an RTSP session (or a file) that is
// reconnected with backoff, an ffmpeg decoder feeding the detectors with the
// newest frame at detect.fps, a ring of encoded access units for pre-event
// clips, and health events (camera.offline / camera.online, once each).
package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/vision"
	_ "github.com/smartcommunity/warden/edge/vision/face" // the detectors register themselves
	_ "github.com/smartcommunity/warden/edge/vision/motion"
	_ "github.com/smartcommunity/warden/edge/vision/throw"
)

// Sink receives the camera's events; (*store.Store).Append satisfies it.
type Sink interface {
	Append(ctx context.Context, evs ...*event.Event) error
}

// MediaStore keeps snapshots and clips; *store.Store satisfies it.
type MediaStore interface {
	PutMedia(kind, contentType string, data []byte) (store.MediaInfo, error)
}

// DefaultDetectors are used when Deps.Detectors is nil: every registered
// detector (edge/vision/...), in frame order.
func DefaultDetectors() []vision.Factory { return vision.Factories(nil) }

// Deps are what a camera needs from the rest of the gateway.
type Deps struct {
	Gateway, Site string
	Sink          Sink       // nil: events are only logged
	Media         MediaStore // nil: events carry no media
	Metrics       *Metrics   // nil: unregistered metrics
	Log           *slog.Logger
	Detectors     []vision.Factory
	// OfflineGrace is how long a camera may be down before camera.offline
	// (default 30 s); StallTimeout is how long without media before a
	// session is dropped and redialled (default 10 s).
	OfflineGrace, StallTimeout time.Duration
	// MaxBackoff caps the reconnect delay (default 30 s).
	MaxBackoff time.Duration
}

// State of a camera for the API.
type State string

const (
	Connecting State = "connecting"
	Online     State = "online"
	Offline    State = "offline"
	// Degraded: video arrives but decodes with errors (junk or damaged
	// RTP); its detectors are paused, so garbage raises no alarms.
	Degraded State = "degraded"
)

var states = []State{Connecting, Online, Offline, Degraded}

// Status is what GET /api/v1/cameras shows.
type Status struct {
	ID        string    `json:"id"`
	State     State     `json:"state"`
	FPS       float64   `json:"fps"`
	LastFrame time.Time `json:"last_frame"`
	LastError string    `json:"last_error,omitempty"`
}

// Camera is the supervisor of one configured camera.
type Camera struct {
	cfg  config.Camera
	deps Deps
	log  *slog.Logger
	m    *Metrics
	// counted: the detectors' counts at the last export (analysis goroutine)
	counted map[string]int
	// keyed: recent events by their detection's Key, for refinements
	// (analysis goroutine)
	keyed   keyedEvents
	ring    *ring
	live    viewers // live view of the main stream
	sub     viewers // … and of the detect sub-stream, when it is another stream
	watchMu sync.Mutex

	start time.Time

	mu      sync.Mutex
	state   State
	lastErr string
	// decoder errors (see noteDecodeErrors)
	decErrN     int64
	decErrAt    time.Time
	decErrs     []errSample
	lastFrame   time.Time
	fps         float64
	fpsCount    int
	fpsSince    time.Time
	lostAt      time.Time
	offlineSent bool
	// the newest analysed frame as decoded, kept about once a second for
	// the API's snapshot and converted only when one is asked for: a copy
	// into the same buffer costs far less than a colour conversion and a
	// fresh Mat every second
	snap    liveFrame
	snapAt  time.Time
	hasSnap bool

	slot   chan struct{}          // signals a frame in queue
	swap   chan []vision.Detector // Recalibrate's detectors for the analysis loop
	swapMu sync.Mutex
	queue  []*liveFrame // decoded frames waiting for analysis, oldest first

	clipSem chan struct{}
	wg      sync.WaitGroup
	frames  bufList // decoded frames
	colours bufList // their BGR conversions (another size)
}

func (c *Camera) getBuf(n int) []byte { return c.frames.get(n) }
func (c *Camera) putBuf(b []byte)     { c.frames.put(b) }

// bufList keeps a few frame buffers for reuse. A sync.Pool is emptied by
// every GC, and at 5 fps of 1.4–6 MB frames per camera that made most
// frames a fresh allocation: zeroed, page-faulted and charged anew.
type bufList chan []byte

// framesInFlight: one being read, one waiting for analysis, one analysed.
const framesInFlight = 4

func (l bufList) get(n int) []byte {
	select {
	case b := <-l:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

func (l bufList) put(b []byte) {
	select {
	case l <- b:
	default: // full: let it go
	}
}

type liveFrame struct {
	pix     []byte // I420 when i420, else BGR
	i420    bool
	w, h    int
	pts     time.Duration
	wall    time.Time
	damaged bool // see vision.Frame.Damaged
}

// New builds a camera; Run starts it.
func New(cfg config.Camera, deps Deps) *Camera {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	if deps.Detectors == nil {
		deps.Detectors = DefaultDetectors()
	}
	if deps.OfflineGrace <= 0 {
		deps.OfflineGrace = 30 * time.Second
	}
	if deps.StallTimeout <= 0 {
		deps.StallTimeout = 10 * time.Second
	}
	if deps.MaxBackoff <= 0 {
		deps.MaxBackoff = 30 * time.Second
	}
	if cfg.Detect.FPS <= 0 {
		cfg.Detect.FPS = config.DefaultDetectFPS
	}
	if cfg.Record.PreSeconds <= 0 {
		cfg.Record.PreSeconds = config.DefaultPreSeconds
	}
	if cfg.Record.PostSeconds <= 0 {
		cfg.Record.PostSeconds = config.DefaultPostSeconds
	}
	recent := RecentSeconds
	if cfg.Detect.Throw != nil {
		recent = ThrowRecentSeconds // the calibration test replays a minute
	}
	keep := time.Duration(max(cfg.Record.PreSeconds+cfg.Record.PostSeconds, recent)+5) * time.Second
	return &Camera{
		cfg: cfg, deps: deps, log: deps.Log.With("component", "camera", "camera", cfg.ID), m: deps.Metrics,
		ring: newRing(keep, 64<<20), state: Connecting,
		frames: make(bufList, framesInFlight), colours: make(bufList, 2),
		slot: make(chan struct{}, 1), clipSem: make(chan struct{}, 2), swap: make(chan []vision.Detector, 1),
	}
}

// ID is the camera id.
func (c *Camera) ID() string { return c.cfg.ID }

// Status reports state, measured analysis fps, last frame and last error.
func (c *Camera) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{ID: c.cfg.ID, State: c.state, FPS: c.fps, LastFrame: c.lastFrame, LastError: c.lastErr}
}

// LastSnapshot is a JPEG of the newest analysed frame (at most a second old
// relative to the last frame), or nil before the first frame.
func (c *Camera) LastSnapshot() ([]byte, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasSnap {
		return nil, time.Time{}
	}
	p, err := c.picture(&c.snap, false) // in colour
	if err != nil {
		return nil, time.Time{}
	}
	defer p.close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, p.mat)
	if err != nil {
		return nil, time.Time{}
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), c.snapAt
}

// A camera is degraded when, over corruptWindow, at least half of its
// decoded frames are damaged and the errors were not one burst
// (corruptErrors or more in all, or on corruptSpots frames or more):
// persistent garbage, not a moment of lost packets. A frame is damaged when
// it, or one up to corruptCarry before it, came with decoder errors: a
// broken picture is the reference of the next ones, and ffmpeg's HEVC
// decoder reports errors on about one frame in ten of a garbled stream
// (H.264's on nearly every one). It is online again after corruptClear
// without an error.
const (
	corruptErrors = 10
	corruptSpots  = 3
	corruptCarry  = time.Second
	corruptWindow = 5 * time.Second
	corruptClear  = 10 * time.Second
)

// noteDecodeErrors takes the decoder's running error count (and last line)
// after each decoded frame and moves the camera between online and
// degraded. It says whether the frame is damaged.
func (c *Camera) noteDecodeErrors(now time.Time, n int64, last string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n < c.decErrN { // a new decoder (a new session) counts from 0
		c.decErrN, c.decErrs = 0, nil
	}
	fresh := n - c.decErrN
	damaged := fresh > 0 || !c.decErrAt.IsZero() && now.Sub(c.decErrAt) < corruptCarry
	if fresh > 0 {
		c.m.Errors.WithLabelValues(c.cfg.ID, "corrupt").Add(float64(fresh))
		c.decErrN, c.decErrAt = n, now
	}
	c.decErrs = append(c.decErrs, errSample{now, fresh, damaged})
	var errs int64
	spots, bad, kept := 0, 0, c.decErrs[:0]
	for _, e := range c.decErrs {
		if now.Sub(e.at) > corruptWindow {
			continue
		}
		kept = append(kept, e)
		if e.n > 0 {
			errs += e.n
			spots++
		}
		if e.damaged {
			bad++
		}
	}
	c.decErrs = kept
	switch {
	case c.state == Online && (errs >= corruptErrors || spots >= corruptSpots) && 2*bad >= len(kept):
		c.state = Degraded
		c.lastErr = fmt.Sprintf("the stream decodes with errors (%d in %s, %d of %d frames damaged): %s", errs, corruptWindow, bad, len(kept), last)
		c.log.Warn("camera degraded: the stream decodes with errors; detectors paused", "errors", errs, "frames", len(kept), "last", last)
	case c.state == Degraded && now.Sub(c.decErrAt) >= corruptClear:
		c.state, c.lastErr = Online, ""
		c.log.Info("camera decodes cleanly again; detectors resumed")
	}
	return damaged
}

type errSample struct {
	at      time.Time
	n       int64
	damaged bool
}

// degraded reports whether detection is paused (see Degraded).
func (c *Camera) degraded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == Degraded
}

// RecentSeconds is how much of its stream every camera keeps for "last
// 30 s" playback (Recent), at least: the ring holds this or pre + post
// seconds, whichever is longer (and at most 64 MiB).
const RecentSeconds = 30

// ThrowRecentSeconds is what a throw camera keeps: the calibration test
// replays its last minute through a proposed calibration.
const ThrowRecentSeconds = 60

// Recalibrate gives the running camera detectors built from cam (the same
// camera with a new detect section): the calibration page's save takes
// effect without a restart. The analysis goroutine swaps them in before
// its next frame and closes the old ones.
func (c *Camera) Recalibrate(cam config.Camera) error {
	if cam.ID != c.cfg.ID {
		return fmt.Errorf("camera %s: recalibrate with the config of %s", c.cfg.ID, cam.ID)
	}
	if cam.Detect.FPS <= 0 {
		cam.Detect.FPS = c.cfg.Detect.FPS
	}
	dets, err := vision.Open(cam, c.deps.Detectors...)
	if err != nil {
		return fmt.Errorf("camera %s: %w", c.cfg.ID, err)
	}
	c.swapMu.Lock()
	defer c.swapMu.Unlock()
	select {
	case old := <-c.swap: // not taken yet: replaced
		closeAll(old)
	default:
	}
	c.swap <- dets
	select {
	case c.slot <- struct{}{}: // wake the analysis loop
	default:
	}
	return nil
}

func closeAll(dets []vision.Detector) {
	for _, d := range dets {
		d.Close()
	}
}

// ErrNoVideo is Recent's answer when the camera has not sent video (or not
// for that long).
var ErrNoVideo = errors.New("no video kept")

// Recent is the last d of the camera's stream as an MP4, cut from the ring
// at a key frame and muxed without re-encoding: what a guard watches to see
// what happened just before he looked.
func (c *Camera) Recent(d time.Duration) ([]byte, error) {
	now := time.Now()
	units, codec := c.ring.slice(now.Add(-d), now)
	if len(units) == 0 {
		return nil, fmt.Errorf("camera %s: %w", c.cfg.ID, ErrNoVideo)
	}
	b, err := writeMP4(units, codec)
	if err != nil {
		return nil, fmt.Errorf("camera %s: recent video: %w", c.cfg.ID, err)
	}
	return b, nil
}

// isFile reports whether the camera url is a file path (or file://) rather
// than a stream URL.
func isFile(u string) bool { return !strings.Contains(u, "://") || strings.HasPrefix(u, "file://") }

// Run supervises the camera until ctx ends. It returns an error only when
// the camera cannot run at all (bad detector config).
func (c *Camera) Run(ctx context.Context) error {
	dets, err := vision.Open(c.cfg, c.deps.Detectors...)
	if err != nil {
		return fmt.Errorf("camera %s: %w", c.cfg.ID, err)
	}
	c.start = time.Now()
	c.mu.Lock()
	c.lostAt = c.start
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.analyse(ctx, dets) }()
	go func() { defer wg.Done(); c.health(ctx) }()

	detectURL := c.cfg.URL
	if c.cfg.Detect.URL != "" {
		detectURL = c.cfg.Detect.URL
	}
	recordURL := c.cfg.URL
	if c.cfg.Record.URL != "" {
		recordURL = c.cfg.Record.URL
	}
	if isFile(detectURL) {
		c.superviseFile(ctx, strings.TrimPrefix(detectURL, "file://"))
	} else {
		if recordURL != detectURL && !isFile(recordURL) {
			wg.Add(1)
			go func() { defer wg.Done(); c.supervise(ctx, recordURL, false, true) }()
		}
		c.supervise(ctx, detectURL, true, recordURL == detectURL)
	}
	cancel()
	wg.Wait()
	c.wg.Wait() // clips in flight
	select {
	case pending := <-c.swap:
		closeAll(pending)
	default:
	}
	return nil
}

// setOnline records the health of the detect input. camera.online is only
// sent after a camera.offline, so a flapping link yields one pair at most
// per outage.
func (c *Camera) setOnline(ctx context.Context, up bool, why error) {
	c.mu.Lock()
	switch {
	case why != nil:
		c.lastErr = why.Error()
	case up:
		c.lastErr = "" // recovered: the last failure is history
	}
	was := c.state
	sendOnline := false
	if up {
		c.state = Online
		if c.offlineSent {
			c.offlineSent = false
			sendOnline = true
		}
	} else if was == Online || was == Degraded {
		c.state = Connecting
		c.lostAt = time.Now()
	}
	c.mu.Unlock()
	if up && was != Online {
		c.log.Info("camera online")
	}
	if sendOnline {
		c.emitHealth(ctx, event.CameraOnline, nil)
	}
}

// health sends camera.offline once the grace period has passed and keeps
// the frame age gauge current.
func (c *Camera) health(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		send := c.state != Online && c.state != Degraded && !c.offlineSent && time.Since(c.lostAt) >= c.deps.OfflineGrace
		var data map[string]any
		if send {
			c.offlineSent = true
			c.state = Offline
			reason := c.lastErr
			if reason == "" {
				reason = "no video within " + c.deps.OfflineGrace.String()
			}
			data = map[string]any{"reason": reason}
		}
		if !c.lastFrame.IsZero() {
			c.m.FrameAge.WithLabelValues(c.cfg.ID).Set(time.Since(c.lastFrame).Seconds())
		}
		for _, st := range states {
			c.m.State.WithLabelValues(c.cfg.ID, string(st)).Set(map[bool]float64{true: 1}[c.state == st])
		}
		c.mu.Unlock()
		if send {
			c.log.Warn("camera offline", "reason", data["reason"])
			c.emitHealth(ctx, event.CameraOffline, data)
		}
	}
}

func (c *Camera) origin(t time.Time) event.Origin {
	return event.Origin{Gateway: c.deps.Gateway, Site: c.deps.Site,
		Source: event.Source{Kind: "camera", ID: c.cfg.ID}, Location: c.cfg.Location, Time: t}
}

func (c *Camera) emitHealth(ctx context.Context, typ string, data map[string]any) {
	c.append(ctx, event.New(c.origin(time.Now()), typ, data))
}

func (c *Camera) append(ctx context.Context, ev *event.Event) {
	if c.deps.Sink == nil {
		c.log.Info("event", "type", ev.Type, "id", ev.ID)
		return
	}
	// an event must outlive a shutdown that races it
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.deps.Sink.Append(actx, ev); err != nil {
		c.m.Errors.WithLabelValues(c.cfg.ID, "sink").Inc()
		c.log.Error("event append failed", "type", ev.Type, "err", err)
	}
}
