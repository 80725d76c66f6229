package liveview

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/camera"
)

// hlsStream is one camera's LL-HLS muxer, shared by every HLS player of
// it; it starts with the first request and ends HLSIdle after the last.
type hlsStream struct {
	ready chan struct{} // closed once muxer is set, or err
	muxer *gohlslib.Muxer
	err   error
	last  atomic.Int64 // unix ns of the last request
}

// serveHLS answers GET /api/v1/cameras/{id}/live/{file}: the LL-HLS
// playlist (index.m3u8), its segments and parts. It is the fallback where
// WebRTC is not available, and the way to an H.265 camera. Under
// /live/h264/ it is the camera's H.264 stream (Source.WatchH264): the
// H.264 sub-stream of an H.265 camera, for a browser that cannot decode
// H.265.
func (s *Server) serveHLS(w http.ResponseWriter, r *http.Request, h264 bool) {
	id := r.PathValue("id")
	st, err := s.hlsFor(id, h264)
	if err != nil {
		s.watchRefused(w, id, err)
		return
	}
	st.last.Store(time.Now().UnixNano())
	select {
	case <-st.ready:
	case <-r.Context().Done():
		return
	}
	if st.err != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "camera %s: %v", id, st.err))
		return
	}
	st.muxer.Handle(w, r)
}

// hlsFor returns the camera's stream (its H.264 one when h264), starting
// it when there is none.
func (s *Server) hlsFor(id string, h264 bool) (*hlsStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.closed || s.ctx.Err() != nil {
		return nil, errors.New("live view is not running")
	}
	key, watch := id, s.o.Cameras.Watch
	if h264 {
		key, watch = id+"/h264", s.o.Cameras.WatchH264
	}
	if st, ok := s.hls[key]; ok {
		return st, nil
	}
	viewer, err := watch(id, s.o.MaxViewers)
	if err != nil {
		return nil, err
	}
	st := &hlsStream{ready: make(chan struct{})}
	st.last.Store(time.Now().UnixNano())
	s.hls[key] = st
	s.viewers.WithLabelValues(id).Inc()
	s.wg.Add(1)
	go s.runHLS(s.ctx, id, key, st, viewer)
	return st, nil
}

// runHLS feeds the muxer from the first key frame until nobody has asked
// for HLSIdle, or the server stops.
func (s *Server) runHLS(ctx context.Context, id, key string, st *hlsStream, viewer *camera.Viewer) {
	defer s.wg.Done()
	defer func() {
		viewer.Close()
		s.mu.Lock()
		delete(s.hls, key)
		s.mu.Unlock()
		s.viewers.WithLabelValues(id).Dec()
		s.log.Info("live HLS stream ended", "camera", id)
	}()
	fail := func(err error) {
		st.err = err
		close(st.ready)
	}
	var first camera.LiveUnit
	select {
	case u, ok := <-viewer.C:
		if !ok {
			fail(errors.New("the camera's stream ended"))
			return
		}
		first = u
	case <-time.After(10 * time.Second):
		fail(errors.New("no key frame in 10 s"))
		return
	case <-ctx.Done():
		fail(ctx.Err())
		return
	}
	track := &gohlslib.Track{Codec: codecOf(first.AU, viewer.HEVC), ClockRate: 90000}
	m := &gohlslib.Muxer{Tracks: []*gohlslib.Track{track}, Variant: gohlslib.MuxerVariantLowLatency,
		SegmentCount: 7, SegmentMinDuration: time.Second, PartMinDuration: 200 * time.Millisecond}
	if err := m.Start(); err != nil {
		fail(fmt.Errorf("HLS muxer: %w", err))
		return
	}
	defer m.Close()
	st.muxer = m
	close(st.ready)
	s.log.Info("live HLS stream started", "camera", id, "hevc", viewer.HEVC, "sub_stream", viewer.Sub)
	write := func(u camera.LiveUnit) {
		var err error
		if viewer.HEVC {
			err = m.WriteH265(track, u.Wall, u.PTS, u.AU)
		} else {
			err = m.WriteH264(track, u.Wall, u.PTS, u.AU)
		}
		if err != nil {
			s.log.Debug("live HLS write", "camera", id, "err", err)
		}
	}
	write(first)
	idle := time.NewTicker(min(s.o.HLSIdle/3, 5*time.Second))
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-idle.C:
			if time.Since(time.Unix(0, st.last.Load())) > s.o.HLSIdle {
				return
			}
		case u, ok := <-viewer.C:
			if !ok {
				return
			}
			write(u)
		}
	}
}

// codecOf reads the parameter sets in front of the first key frame.
func codecOf(au [][]byte, hevc bool) codecs.Codec {
	var p camera.ParamSets
	p.Update(au, hevc)
	if hevc {
		return &codecs.H265{VPS: p.VPS, SPS: p.SPS, PPS: p.PPS}
	}
	return &codecs.H264{SPS: p.SPS, PPS: p.PPS}
}
