package rtsp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/pion/rtp"
)

// Stream is one file served at rtsp://ADDR/Name. TS must be an H.264 or
// H.265 MPEG-TS file, as made by Prepare.
type Stream struct {
	Name string
	TS   string
}

// Server serves Streams. Set the fields, then Start; Close stops everything.
type Server struct {
	Addr    string
	Streams []Stream
	// User and Pass, when set, require credentials (basic or digest).
	User, Pass string
	// UDPRTPAddress and UDPRTCPAddress (consecutive ports, RTP even) enable
	// UDP transport; empty serves TCP only.
	UDPRTPAddress, UDPRTCPAddress string
	Log                           *slog.Logger
	// OnSent, when set, is told when each access unit has been written,
	// with its PTS from the file's start (90 kHz): what a latency
	// measurement compares the picture on a screen with.
	OnSent func(stream string, pts int64, at time.Time)

	srv *gortsplib.Server
	// mu guards streams: clients may DESCRIBE while Start still adds them.
	mu      sync.RWMutex
	streams map[string]*gortsplib.ServerStream
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	cacheMu sync.Mutex
	cache   map[string]*cachedFile // by TS path: streams of one file share it
	cached  int64                  // bytes reserved in cache
}

// Start listens and starts one pacing goroutine per stream.
func (s *Server) Start() error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.streams = map[string]*gortsplib.ServerStream{}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: s.Addr, UDPRTPAddress: s.UDPRTPAddress, UDPRTCPAddress: s.UDPRTCPAddress}
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("replay: listen %s: %w", s.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, st := range s.Streams {
		forma, err := firstParams(st.TS)
		if err != nil {
			s.Close()
			return fmt.Errorf("replay: %s: %w", st.Name, err)
		}
		ss := &gortsplib.ServerStream{Server: s.srv, Desc: &description.Session{
			Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}},
		}}
		if err := ss.Initialize(); err != nil {
			s.Close()
			return fmt.Errorf("replay: %s: %w", st.Name, err)
		}
		s.mu.Lock()
		s.streams[st.Name] = ss
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.pace(ctx, st, ss)
		}()
	}
	return nil
}

// ListenAddr is the bound address (useful with port 0).
func (s *Server) ListenAddr() string { return s.srv.NetListener().Addr().String() }

// Close stops the server and every stream; it waits for the goroutines.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.srv != nil {
		s.srv.Close()
	}
	s.wg.Wait()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, ss := range s.streams {
		ss.Close()
	}
}

// Run starts the server and blocks until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Wait() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// video is a file's H.264 or H.265 track.
type video struct {
	track *mpegts.Track
	hevc  bool
}

func videoTrack(r *mpegts.Reader) (video, error) {
	for _, t := range r.Tracks() {
		switch t.Codec.(type) {
		case *tscodecs.H264:
			return video{track: t}, nil
		case *tscodecs.H265:
			return video{track: t, hevc: true}, nil
		}
	}
	return video{}, errors.New("no H.264 or H.265 track")
}

// onData calls cb with each access unit (pts, dts in 90 kHz).
func (v video) onData(r *mpegts.Reader, cb func(pts, dts int64, au [][]byte) error) {
	if v.hevc {
		r.OnDataH265(v.track, cb)
	} else {
		r.OnDataH264(v.track, cb)
	}
}

// firstParams scans a TS file for the first parameter sets, so the SDP
// carries them and clients can size their decoders before the first key
// frame.
func firstParams(path string) (format.Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := videoTrack(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var vps, sps, pps []byte
	errDone := errors.New("done")
	v.onData(r, func(_, _ int64, au [][]byte) error {
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			if v.hevc {
				switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
				case h265.NALUType_VPS_NUT:
					vps = nalu
				case h265.NALUType_SPS_NUT:
					sps = nalu
				case h265.NALUType_PPS_NUT:
					pps = nalu
				}
				continue
			}
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = nalu
			case h264.NALUTypePPS:
				pps = nalu
			}
		}
		if sps != nil && pps != nil && (vps != nil || !v.hevc) {
			return errDone
		}
		return nil
	})
	for {
		err := r.Read()
		if errors.Is(err, errDone) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: no parameter sets found: %w", path, err)
		}
	}
	if v.hevc {
		return &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}, nil
	}
	return &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}, nil
}

// encoder packetizes access units, H.264 or H.265.
type encoder interface {
	Encode(au [][]byte) ([]*rtp.Packet, error)
}

func newEncoder(f format.Format) (encoder, error) {
	switch f := f.(type) {
	case *format.H264:
		return f.CreateEncoder()
	case *format.H265:
		return f.CreateEncoder()
	}
	return nil, fmt.Errorf("no encoder for %T", f)
}

// pace writes the file's access units in real time, forever. Each loop
// continues the RTP clock where the previous one ended, so timestamps stay
// monotonic across the wrap.
func (s *Server) pace(ctx context.Context, st Stream, ss *gortsplib.ServerStream) {
	medi := ss.Desc.Medias[0]
	enc, err := newEncoder(medi.Formats[0])
	if err != nil {
		s.Log.Error("replay: encoder", "stream", st.Name, "err", err)
		return
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	rtpStart := binary.BigEndian.Uint32(b[:])
	var base int64 // 90 kHz ticks played in previous loops
	start := time.Now()
	for loop := 0; ctx.Err() == nil; loop++ {
		played, err := s.playOnce(ctx, st, ss, medi, enc, rtpStart, base, start)
		if err != nil && ctx.Err() == nil {
			s.Log.Error("replay: read failed; retrying", "stream", st.Name, "file", st.TS, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if played <= 0 {
			played = 90000 / 25
		}
		base += played
	}
}

// playOnce plays the file once from base; it returns the ticks it covered.
func (s *Server) playOnce(ctx context.Context, st Stream, ss *gortsplib.ServerStream, medi *description.Media,
	enc encoder, rtpStart uint32, base int64, start time.Time) (int64, error) {
	// first is the first unit's DTS. The time decoder starts the first PTS at
	// 0, so with B-frames the first DTS are negative: no sentinel value.
	var first, last, lastStep int64
	started := false
	err := s.units(st.TS, func(u unit) error {
		if !started {
			started, first = true, u.dts
		}
		if d := u.dts - first; d > last {
			lastStep = d - last
			last = d
		}
		// sleep until this unit's wall time
		due := start.Add(time.Duration(base+u.dts-first) * time.Second / 90000)
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		pkts, err := enc.Encode(u.au)
		if err != nil {
			return nil // skip a unit the packetizer refuses
		}
		ts := rtpStart + uint32(base+u.pts-first)
		for _, p := range pkts {
			p.Timestamp = ts
			if err := ss.WritePacketRTP(medi, p); err != nil {
				return err
			}
		}
		if s.OnSent != nil {
			s.OnSent(st.Name, u.pts-first, time.Now())
		}
		return nil
	})
	if err != nil {
		return last + lastStep, err
	}
	if lastStep == 0 {
		lastStep = 90000 / 25
	}
	return last + lastStep, nil
}

// unit is one access unit of a file; times in 90 kHz from its start.
type unit struct {
	pts, dts int64
	au       [][]byte
}

// cacheBudget is how many bytes of access units the server keeps in
// memory. Demuxing the TS file again on every loop was 60 % of the
// server's CPU with 24 streams of one 720p clip (0.23 cores), and the
// replay stands in for cameras on the box it measures; files past the
// budget are read from disk each loop.
const cacheBudget = 256 << 20

// units calls cb with each access unit of the TS file at path, in order,
// from memory when the file fits the cache budget.
func (s *Server) units(path string, cb func(unit) error) error {
	s.cacheMu.Lock()
	c, ok := s.cache[path]
	if !ok {
		c = &cachedFile{}
		if s.cache == nil {
			s.cache = map[string]*cachedFile{}
		}
		s.cache[path] = c
	}
	s.cacheMu.Unlock()
	c.once.Do(func() {
		fi, err := os.Stat(path)
		if err != nil || !s.reserve(fi.Size()) {
			return
		}
		var us []unit
		if err := readUnits(path, func(u unit) error {
			for i, n := range u.au {
				u.au[i] = append([]byte(nil), n...) // the demuxer's buffers are not ours to keep
			}
			us = append(us, u)
			return nil
		}); err == nil {
			c.units = us
		}
	})
	if c.units == nil {
		return readUnits(path, cb)
	}
	for _, u := range c.units {
		if err := cb(u); err != nil {
			return err
		}
	}
	return nil
}

// reserve takes n bytes of the cache budget, if they are left.
func (s *Server) reserve(n int64) bool {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cached+n > cacheBudget {
		return false
	}
	s.cached += n
	return true
}

type cachedFile struct {
	once  sync.Once
	units []unit // nil: read from disk
}

// readUnits demuxes the TS file at path and calls cb with each access unit.
func readUnits(path string, cb func(unit) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		return err
	}
	v, err := videoTrack(r)
	if err != nil {
		return err
	}
	var td mpegts.TimeDecoder
	td.Initialize()
	v.onData(r, func(pts, dts int64, au [][]byte) error {
		return cb(unit{pts: td.Decode(pts), dts: td.Decode(dts), au: au})
	})
	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// OnDescribe serves a known path, 404 otherwise, after checking credentials.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return s.lookup(ctx.Conn, ctx.Request, ctx.Path)
}

// OnSetup is checked like OnDescribe.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return s.lookup(ctx.Conn, ctx.Request, ctx.Path)
}

// OnPlay accepts; the stream is already live.
func (s *Server) OnPlay(_ *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (s *Server) lookup(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	if s.User != "" && !conn.VerifyCredentials(req, s.User, s.Pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	name := strings.Trim(path, "/")
	s.mu.RLock()
	ss, ok := s.streams[name]
	s.mu.RUnlock()
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, fmt.Errorf("no stream %q", name)
	}
	return &base.Response{StatusCode: base.StatusOK}, ss, nil
}
