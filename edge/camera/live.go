package camera

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/cenkalti/backoff/v5"
	"github.com/pion/rtp"
)

// supervise runs sessions on rawURL until ctx ends, redialling with
// exponential backoff and jitter. detect feeds the decoder, record the ring.
func (c *Camera) supervise(ctx context.Context, rawURL string, detect, record bool) {
	bo := &backoff.ExponentialBackOff{InitialInterval: 500 * time.Millisecond, RandomizationFactor: 0.5,
		Multiplier: 2, MaxInterval: c.deps.MaxBackoff}
	bo.Reset()
	role := map[bool]string{true: "detect", false: "record"}[detect]
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			c.m.Reconnects.WithLabelValues(c.cfg.ID).Inc()
		}
		got, err := c.session(ctx, rawURL, detect, record)
		if ctx.Err() != nil {
			return
		}
		if got {
			bo.Reset()
		}
		if err == nil {
			err = errors.New("session ended")
		}
		// The error goes to logs, /api/v1/cameras and camera.offline's
		// reason (stored, uplinked): never with the camera's password.
		err = scrub(err, rawURL)
		c.m.Errors.WithLabelValues(c.cfg.ID, "session").Inc()
		if detect {
			c.setOnline(ctx, false, err)
		}
		wait := bo.NextBackOff()
		// log each failure at debug; the state change itself is logged once
		c.log.Debug("session failed; retrying", "role", role, "url", redact(rawURL), "err", err, "retry_in", wait)
		if attempt == 0 || got {
			c.log.Warn("camera session lost", "role", role, "url", redact(rawURL), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// scrub hides the user info of rawURL (user:password@) wherever err's
// text repeats it, also when rawURL does not parse (url.Parse quotes the
// whole string in its error).
func scrub(err error, rawURL string) error {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return err
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at <= 0 {
		return err
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	msg := err.Error()
	clean := strings.ReplaceAll(msg, rest[:at]+"@", user+":xxxxx@")
	if q := strconv.Quote(rest[:at] + "@"); len(q) > 2 {
		clean = strings.ReplaceAll(clean, q[1:len(q)-1], user+":xxxxx@") // as quoted inside an error
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// redact hides the password of a URL for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// dialURL splits off Warden's own query key transport=udp|tcp.
func dialURL(raw string) (*base.URL, gortsplib.Protocol, error) {
	proto := gortsplib.ProtocolTCP
	pu, err := url.Parse(raw)
	if err != nil {
		return nil, proto, fmt.Errorf("bad url: %w", err)
	}
	q := pu.Query()
	switch strings.ToLower(q.Get("transport")) {
	case "", "tcp":
	case "udp":
		proto = gortsplib.ProtocolUDP
	default:
		return nil, proto, fmt.Errorf("bad url: transport=%q is not tcp or udp", q.Get("transport"))
	}
	if q.Has("transport") {
		q.Del("transport")
		pu.RawQuery = q.Encode()
	}
	u, err := base.ParseURL(pu.String())
	if err != nil {
		return nil, proto, fmt.Errorf("bad url: %w", err)
	}
	return u, proto, nil
}

// session is one RTSP connection. It returns whether media arrived and why
// it ended.
func (c *Camera) session(ctx context.Context, rawURL string, detect, record bool) (bool, error) {
	u, proto, err := dialURL(rawURL)
	if err != nil {
		return false, err
	}
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto,
		ReadTimeout: c.deps.StallTimeout + 5*time.Second, WriteTimeout: 10 * time.Second}
	if err := cl.Start(); err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer cl.Close()
	// gortsplib's calls block up to ReadTimeout; close on cancel
	stop := context.AfterFunc(ctx, cl.Close)
	defer stop()

	desc, _, err := cl.Describe(u)
	if err != nil {
		var bad liberrors.ErrClientBadStatusCode
		if errors.As(err, &bad) && bad.Code == base.StatusUnauthorized {
			return false, fmt.Errorf("describe: wrong or missing credentials: %w", err)
		}
		return false, fmt.Errorf("describe: %w", err)
	}
	tr, err := findTrack(desc)
	if err != nil {
		return false, err
	}
	if record {
		c.ring.setCodec(tr.hevc)
	}
	if _, err := cl.Setup(desc.BaseURL, tr.medi, 0, 0); err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}

	sessStart := time.Since(c.start)
	var (
		lastMedia atomic.Int64 // unix nanos
		got       atomic.Bool
		firstPTS  int64 = math.MinInt64
		started   bool  // a key frame arrived; units before it are useless
		params    = tr.sdp
		feed      = make(chan feedUnit, feedDepth)
		waitIDR   = true
		dec       *decoder
		// key frames: the last one's PTS, the gap before it, the last fed
		lastIDR, gop, lastFed int64 = math.MinInt64, 0, math.MinInt64
		keyOnly               bool  // feed key frames only (keyFramesSuffice)
		interval              = int64(90000 / c.cfg.Detect.FPS)
		decErr                = make(chan error, 2)
		decWG                 sync.WaitGroup
	)
	lastMedia.Store(time.Now().UnixNano())
	defer func() {
		cl.Close() // no RTP callback runs after this
		close(feed)
		decWG.Wait()
	}()

	startDec := func(s spsInfo) error {
		fps := s.fps
		if fps <= 0 || fps > 120 {
			fps = 25
		}
		every := max(1, int(math.Round(fps/c.cfg.Detect.FPS)))
		if keyOnly {
			every = 1 // every unit fed is a frame to analyse
			c.log.Info("decoding key frames only: they come often enough for the analysis rate",
				"gop", time.Duration(gop)*time.Second/90000, "detect_fps", c.cfg.Detect.FPS)
		}
		d, err := startDecoder(ctx, tr.hevc, s.w, s.h, every, keyOnly, c.getBuf)
		if err != nil {
			return err
		}
		dec = d
		decWG.Add(2)
		go func() { // writer: never blocks the RTSP reader
			defer decWG.Done()
			for fu := range feed {
				if err := d.write(fu.au, fu.pts, fu.wall); err != nil {
					decErr <- fmt.Errorf("decoder input: %w%s", err, d.errText())
					for range feed {
					}
					break
				}
			}
			_ = d.close()
		}()
		go func() { // reader
			defer decWG.Done()
			for {
				rf, err := d.read()
				if err != nil {
					if ctx.Err() == nil {
						select {
						case decErr <- err:
						default:
						}
					}
					return
				}
				c.m.Decoded.WithLabelValues(c.cfg.ID).Inc()
				c.m.DecodeLat.WithLabelValues(c.cfg.ID).Observe(rf.lat.Seconds())
				damaged := false
				if detect {
					n, last := d.errorLines()
					damaged = c.noteDecodeErrors(time.Now(), n, last)
				}
				pts := sessStart + time.Duration(rf.pts-firstPTSOr0(&firstPTS))*time.Second/90000
				c.publish(&liveFrame{pix: rf.pix, i420: rf.i420, w: d.w, h: d.h, pts: pts, wall: rf.wall, damaged: damaged})
			}
		}()
		return nil
	}

	cl.OnPacketRTP(tr.medi, tr.forma, func(pkt *rtp.Packet) {
		now := time.Now()
		// any packet is media: with a long GOP no PTS is known (and no unit
		// is usable) until the first key frame, which may be 10 s away
		lastMedia.Store(now.UnixNano())
		pts, ok := cl.PacketPTS(tr.medi, pkt)
		if !ok {
			return
		}
		au, err := tr.decode(pkt)
		if err != nil {
			if !partialUnit(err) {
				c.m.Errors.WithLabelValues(c.cfg.ID, "rtp").Inc()
			}
			return
		}
		if !got.Load() {
			got.Store(true)
			if detect {
				c.setOnline(ctx, true, nil)
			}
		}
		size := 0
		for _, n := range au {
			size += len(n)
		}
		params.Update(au, tr.hevc)
		c.m.Received.WithLabelValues(c.cfg.ID).Inc()
		c.m.Bytes.WithLabelValues(c.cfg.ID).Add(float64(size))
		idr := randomAccess(au, tr.hevc)
		if !started {
			if !idr {
				return
			}
			started = true
			atomic.StoreInt64(&firstPTS, pts)
			// a camera may send its parameter sets only in the SDP; the
			// decoder and the ring need them in band
			au = tr.sdp.Prefix(au, true, tr.hevc)
		}
		// no DTS here: the decoder does not need it, and clips derive it
		// from the PTS when they are muxed (clipDTS)
		watchers := &c.sub // a detect-only session is the sub-stream
		if record {
			c.ring.push(unit{wall: now, pts: pts, au: au, idr: idr, size: size})
			watchers = &c.live
		}
		watchers.codec.Store(codecOf(tr.hevc))
		if watchers.count() > 0 { // nobody watching: nothing more to do
			watchers.push(LiveUnit{AU: params.Prefix(au, idr, tr.hevc), PTS: pts, Wall: now, IDR: idr})
		}
		if !detect {
			return
		}
		if idr {
			if lastIDR != math.MinInt64 {
				gop = pts - lastIDR
			}
			lastIDR = pts
		}
		if dec == nil {
			if !params.complete(tr.hevc) {
				return
			}
			if c.cfg.Detect.FPS <= keyOnlyMaxFPS && gop <= 0 {
				return // measure one GOP first: that long a wait at session start, for a camera analysed this slowly
			}
			s, err := parseSPS(params.SPS, tr.hevc)
			if err != nil {
				err = fmt.Errorf("bad SPS: %w", err)
			} else {
				// frames that may be reordered would be held back until later
				// ones arrive: seconds, fed one key frame a second
				keyOnly = c.cfg.Detect.FPS <= keyOnlyMaxFPS && keyFramesSuffice(gop, interval) && s.noReorder
				err = startDec(s)
			}
			if err != nil {
				select {
				case decErr <- err:
				default:
				}
				detect = false
				return
			}
		}
		if keyOnly {
			// one key frame per analysis interval; none in between
			if !idr || lastFed != math.MinInt64 && pts-lastFed < interval-gop/2 {
				return
			}
			lastFed = pts
		}
		if waitIDR && !idr {
			c.m.Dropped.WithLabelValues(c.cfg.ID, "decoder").Inc()
			return
		}
		waitIDR = false
		select {
		case feed <- feedUnit{au, pts, now}:
			c.m.Fed.WithLabelValues(c.cfg.ID).Inc()
		default:
			// decoder behind real time: drop until the next key frame
			c.m.Dropped.WithLabelValues(c.cfg.ID, "decoder").Inc()
			waitIDR = true
		}
	})

	if _, err := cl.Play(nil); err != nil {
		return false, fmt.Errorf("play: %w", err)
	}
	err = c.waitSession(ctx, cl, &lastMedia, decErr)
	return got.Load(), err
}

// feedDepth is how many access units wait for a decoder: 2.5 s at 25 fps.
// When it is full the reader drops until the next key frame, which with a
// long GOP blinds the camera for seconds; 16 units lost 2 s of a 4 s GOP
// to a decoder stalled 1.5 s (TestDecoderStallLosesNoUnits). The cost is
// the units' memory (a few MB at 4K) and, only while a decoder is behind,
// that much more latency.
const feedDepth = 64

// keyOnlyMaxFPS: cameras analysed this slowly measure one GOP before they
// start decoding, to decode key frames only when those suffice. Faster
// ones start at once (a key frame is rarely that frequent).
const keyOnlyMaxFPS = 1

// keyFramesSuffice: key frames every gop ticks give at least one frame per
// analysis interval, so the frames between them need not be decoded (a
// 25 fps camera analysed at 1 fps with a 1 s GOP decodes 1 frame in 25).
// A camera whose GOP later grows is analysed once per GOP until its next
// session.
func keyFramesSuffice(gop, interval int64) bool { return gop > 0 && gop <= interval*11/10 }

// waitSession blocks until the session fails, stalls or ctx ends.
func (c *Camera) waitSession(ctx context.Context, cl *gortsplib.Client, lastMedia *atomic.Int64, decErr <-chan error) error {
	waitErr := make(chan error, 1)
	go func() { waitErr <- cl.Wait() }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-waitErr:
			return fmt.Errorf("connection: %w", err)
		case err := <-decErr:
			c.m.Errors.WithLabelValues(c.cfg.ID, "decode").Inc()
			return err
		case <-tick.C:
			if since := time.Since(time.Unix(0, lastMedia.Load())); since > c.deps.StallTimeout {
				return fmt.Errorf("stalled: no media for %v", since.Round(time.Second))
			}
		}
	}
}

type feedUnit struct {
	au   [][]byte
	pts  int64
	wall time.Time
}

func firstPTSOr0(p *int64) int64 {
	v := atomic.LoadInt64(p)
	if v == math.MinInt64 {
		return 0
	}
	return v
}
