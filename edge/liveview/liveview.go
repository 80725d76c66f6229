// Package liveview serves cameras live to the console over WebRTC (WHEP):
// the H.264 access units of the RTSP session the camera already holds are
// passed on as they are, with no re-encoding and no second connection to
// the camera. A camera nobody watches costs nothing extra.
package liveview

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/camera"
)

// Source gives live viewers of cameras; camera.Set is one. WatchH264
// may give the H.264 sub-stream of a camera whose main stream is H.265.
type Source interface {
	Watch(id string, limit int) (*camera.Viewer, error)
	WatchH264(id string, limit int) (*camera.Viewer, error)
}

// Options configure the server.
type Options struct {
	Cameras    Source
	MaxViewers int // per camera (live.max_viewers); an HLS stream counts once
	// HLSIdle ends a camera's HLS stream nobody has asked for this long;
	// default 30 s.
	HLSIdle    time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ConnectTimeout ends a session whose peer has not connected (a tab
	// closed before it did); default 15 s.
	ConnectTimeout time.Duration
}

const maxOfferBytes = 64 << 10

// Server answers WHEP offers; Run owns the sessions' lifetimes.
type Server struct {
	o       Options
	log     *slog.Logger
	api     *webrtc.API
	viewers *prometheus.GaugeVec
	refused *prometheus.CounterVec

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run
	closed   bool            // Run is ending: no session may start (wg.Add after Wait)
	sessions map[string]*session
	hls      map[string]*hlsStream // by camera
	wg       sync.WaitGroup
}

type session struct {
	camera string
	cancel context.CancelFunc
}

// New builds the server.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 15 * time.Second
	}
	if o.HLSIdle <= 0 {
		o.HLSIdle = 30 * time.Second
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("liveview: codecs: %w", err)
	}
	f := promauto.With(o.Registerer)
	return &Server{
		o: o, log: o.Logger.With("component", "liveview"),
		api:      webrtc.NewAPI(webrtc.WithMediaEngine(me)),
		sessions: map[string]*session{},
		hls:      map[string]*hlsStream{},
		viewers: f.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_live_viewers",
			Help: "Live viewers (WebRTC sessions) by camera."}, []string{"camera"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_live_refused_total",
			Help: "Live view requests refused, by reason (cap, no_video, offer, webrtc)."}, []string{"reason"}),
	}, nil
}

// Run serves until ctx ends, then ends every session and waits for them.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait() // each session ends with ctx
	return nil
}

// HTTP is the WHEP handlers (edge/api/routes.go serves them).
func (s *Server) HTTP() api.LiveHandlers {
	return api.LiveHandlers{Offer: http.HandlerFunc(s.offer), Stop: http.HandlerFunc(s.stop),
		HLS:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveHLS(w, r, false) }),
		HLSH264: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveHLS(w, r, true) })}
}

// offer answers POST /api/v1/cameras/{id}/whep: an SDP offer in, an SDP
// answer out (201, Location: the session to DELETE).
func (s *Server) offer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		s.refused.WithLabelValues("offer").Inc()
		api.WriteError(w, api.Errorf(http.StatusUnsupportedMediaType, api.CodeBadRequest, "want an SDP offer (Content-Type: application/sdp)"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil || len(body) > maxOfferBytes || len(body) == 0 {
		s.refused.WithLabelValues("offer").Inc()
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "the SDP offer is empty, unreadable or over %d bytes", maxOfferBytes))
		return
	}
	s.mu.Lock()
	parent := s.ctx
	s.mu.Unlock()
	if parent == nil || parent.Err() != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "live view is not running"))
		return
	}
	viewer, err := s.o.Cameras.WatchH264(id, s.o.MaxViewers)
	switch {
	case err != nil:
		s.watchRefused(w, id, err)
		return
	case viewer.HEVC:
		viewer.Close()
		s.refused.WithLabelValues("no_video").Inc()
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable,
			"camera %s sends H.265, which WebRTC does not carry here: play /api/v1/cameras/%s/live/index.m3u8 (LL-HLS), or give the camera an H.264 sub-stream (detect.url)", id, id))
		return
	}
	answer, pc, track, err := s.negotiate(string(body), id)
	if err != nil {
		viewer.Close()
		s.refused.WithLabelValues("webrtc").Inc()
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
		return
	}
	sid := newID()
	ctx, cancel := context.WithCancel(parent)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		viewer.Close()
		_ = pc.Close()
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "live view is stopping"))
		return
	}
	s.sessions[sid] = &session{camera: id, cancel: cancel}
	s.wg.Add(1) // under mu: never after Run's Wait began
	s.mu.Unlock()
	s.viewers.WithLabelValues(id).Inc()
	go s.serve(ctx, cancel, sid, id, pc, track, viewer)

	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/api/v1/cameras/"+id+"/whep/"+sid)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// watchRefused answers a Watch that failed: unknown camera, cap, no video.
func (s *Server) watchRefused(w http.ResponseWriter, id string, err error) {
	switch {
	case errors.Is(err, api.ErrNotFound):
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no camera %q", id))
	case errors.Is(err, camera.ErrTooManyViewers):
		s.refused.WithLabelValues("cap").Inc()
		api.WriteError(w, api.Errorf(http.StatusTooManyRequests, api.CodeUnavailable, "camera %s already has %d live viewers (live.max_viewers)", id, s.o.MaxViewers))
	default:
		s.refused.WithLabelValues("no_video").Inc()
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "camera %s: %v", id, err))
	}
}

// negotiate answers the offer with one H.264 track, all candidates in the
// answer (no trickle).
func (s *Server) negotiate(offer, id string) (string, *webrtc.PeerConnection, *webrtc.TrackLocalStaticSample, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", nil, nil, fmt.Errorf("peer connection: %w", err)
	}
	fail := func(err error) (string, *webrtc.PeerConnection, *webrtc.TrackLocalStaticSample, error) {
		_ = pc.Close()
		return "", nil, nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "warden-"+id)
	if err != nil {
		return fail(fmt.Errorf("track: %w", err))
	}
	if _, err := pc.AddTrack(track); err != nil {
		return fail(fmt.Errorf("add track: %w", err))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("the SDP offer: %w", err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("answer (does the offer receive H.264 video?): %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("local description: %w", err))
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return fail(errors.New("ICE gathering did not finish in 5 s"))
	}
	return pc.LocalDescription().SDP, pc, track, nil
}

// serve passes the camera's access units to the peer until the session
// ends: the peer leaves or fails, a DELETE, the gateway stopping, or no
// connection within ConnectTimeout.
func (s *Server) serve(ctx context.Context, cancel context.CancelFunc, sid, id string, pc *webrtc.PeerConnection,
	track *webrtc.TrackLocalStaticSample, viewer *camera.Viewer) {
	defer s.wg.Done()
	defer func() {
		cancel()
		viewer.Close()
		_ = pc.Close()
		s.mu.Lock()
		delete(s.sessions, sid)
		s.mu.Unlock()
		s.viewers.WithLabelValues(id).Dec()
		s.log.Info("live view ended", "camera", id, "session", sid)
	}()
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			cancel()
		}
	})
	s.log.Info("live view started", "camera", id, "session", sid, "sub_stream", viewer.Sub)
	timer := time.NewTimer(s.o.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-connected:
	case <-timer.C:
		s.log.Warn("live viewer never connected; session ended", "camera", id, "session", sid)
		return
	case <-ctx.Done():
		return
	}
	var last int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-viewer.C:
			if !ok {
				return
			}
			d := 40 * time.Millisecond
			if last >= 0 && u.PTS > last && u.PTS-last < 90000 {
				d = time.Duration(u.PTS-last) * time.Second / 90000
			}
			last = u.PTS
			if err := track.WriteSample(media.Sample{Data: annexB(u.AU), Duration: d}); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				s.log.Debug("live view write", "camera", id, "err", err)
			}
		}
	}
}

// stop ends a session: DELETE /api/v1/cameras/{id}/whep/{session}.
func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess, ok := s.sessions[r.PathValue("session")]
	s.mu.Unlock()
	if !ok || sess.camera != r.PathValue("id") {
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no such live session"))
		return
	}
	sess.cancel()
	w.WriteHeader(http.StatusNoContent)
}

// annexB joins NAL units with start codes, the form pion's H.264
// packetizer reads.
func annexB(au [][]byte) []byte {
	n := 0
	for _, u := range au {
		n += 4 + len(u)
	}
	out := make([]byte, 0, n)
	for _, u := range au {
		out = append(out, 0, 0, 0, 1)
		out = append(out, u...)
	}
	return out
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
