package camera

import (
	"context"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

// junkStream is the MPEG-TS src with bytes flipped inside its video packets
// (headers, SPS and PPS left alone): RTP arrives, the decoder turns it into
// garbage and complains.
func junkStream(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for off := 0; off+188 <= len(b); off += 188 {
		pid := int(b[off+1]&0x1f)<<8 | int(b[off+2])
		pusi, adapt := b[off+1]&0x40 != 0, b[off+3]&0x20 != 0
		if pid != 0x100 || pusi || adapt {
			continue
		}
		for range 8 {
			b[off+4+rng.IntN(184)] ^= byte(1 + rng.IntN(255))
		}
	}
	out := filepath.Join(t.TempDir(), "junk.ts")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// A stream that decodes to garbage is not "online" with motion alarms: the
// camera is degraded, says why, and its detectors are paused. Before that
// (ffmpeg's HEVC decoder reports about a tenth of the errors for the same
// damage, so an H.265 camera is degraded later, after about 2 s), motion
// at its defaults takes no damaged frame for motion: no event at all.
func TestJunkStreamIsDegraded(t *testing.T) {
	needFFmpeg(t)
	t.Run("h264", func(t *testing.T) { junkIsDegraded(t, testStream(t, 4)) })
	t.Run("h265", func(t *testing.T) {
		needX265(t)
		hevc := filepath.Join(t.TempDir(), "hevc.ts")
		if !cameratest.H265(t, testStream(t, 4), hevc) {
			t.Skip("no H.265 encoder")
		}
		junkIsDegraded(t, hevc)
	})
}

func junkIsDegraded(t *testing.T, src string) {
	srv := &rtsp.Server{Addr: freeAddr(t), Streams: []rtsp.Stream{{Name: "junk", TS: junkStream(t, src)}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	m := NewMetrics(nil)
	cam := New(config.Camera{ID: "junk", URL: "rtsp://" + srv.ListenAddr() + "/junk",
		Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{})}}, // motion's defaults
		Deps{Gateway: "gw", Site: "site", Sink: rec, Media: st, Metrics: m, OfflineGrace: 10 * time.Second})
	runCamera(t, cam)
	t0 := time.Now()
	testenv.Eventually(t, 30*time.Second, "the junk camera degraded", func() (bool, string) {
		s := cam.Status()
		return s.State == Degraded, string(s.State)
	})
	t.Logf("degraded %v after the start", time.Since(t0).Round(100*time.Millisecond))
	inState(t, m, "junk", Degraded)
	if s := cam.Status(); !strings.Contains(s.LastError, "decodes with errors") {
		t.Errorf("degraded without a reason: %+v", s)
	}
	time.Sleep(500 * time.Millisecond) // a frame analysed as the state changed
	before := len(rec.find(event.MotionDetected, "junk"))
	time.Sleep(3 * time.Second) // garbage keeps coming; no alarm comes of it
	evs := rec.find(event.MotionDetected, "junk")
	t.Logf("motion events: %d before degraded, %d after", before, len(evs)-before)
	if len(evs) != 0 {
		t.Errorf("%d motion events from a garbled stream (%d after it was degraded)", len(evs), len(evs)-before)
	}
	if evs := rec.find(event.CameraOffline, "junk"); len(evs) != 0 {
		t.Errorf("degraded is not offline: %v", evs[0].Data)
	}
}

// The camera is degraded when most frames of the last 5 s came with
// decoder errors, not after a burst, and online again once they stop.
func TestDecodeErrorsDegradeAndRecover(t *testing.T) {
	c := New(config.Camera{ID: "x", URL: "rtsp://127.0.0.1:1/x"}, Deps{Metrics: NewMetrics(nil)})
	c.state = Online
	t0 := time.Unix(1000, 0)
	n := int64(0)
	frame := func(i int, errs int64, last string) { // frames 200 ms apart (5 fps)
		n += errs
		c.noteDecodeErrors(t0.Add(time.Duration(i)*200*time.Millisecond), n, last)
	}
	// a burst: 40 errors on 3 frames out of 25 (lost packets)
	for i := range 25 {
		frame(i, map[bool]int64{true: 13}[i >= 10 && i < 13], "burst")
	}
	if c.state != Online {
		t.Fatalf("a burst of errors degraded the camera: %q", c.lastErr)
	}
	// persistent garbage: errors on every frame
	for i := 25; i < 40; i++ {
		frame(i, 2, "cbp too large")
	}
	if c.state != Degraded || !strings.Contains(c.lastErr, "cbp too large") {
		t.Fatalf("state %s, reason %q", c.state, c.lastErr)
	}
	for i := 40; i < 60; i++ { // 4 s clean
		frame(i, 0, "")
	}
	if c.state != Degraded {
		t.Fatal("recovered 4 s after the last error")
	}
	for i := 60; i < 95; i++ { // 11 s clean in all
		frame(i, 0, "")
	}
	if c.state != Online || c.lastErr != "" {
		t.Fatalf("11 s without errors: state %s, reason %q", c.state, c.lastErr)
	}
	c.noteDecodeErrors(t0.Add(20*time.Second), 2, "a new decoder counts from 0")
	if c.decErrN != 2 || c.state != Online {
		t.Fatalf("new decoder: count %d, state %s", c.decErrN, c.state)
	}
}

// A garbled H.265 stream makes the decoder complain on one frame in a few,
// yet every picture is broken: errors spread over frames, each damaging
// the next second of frames, degrade the camera. Packet losses a few seconds
// apart do not.
func TestSparseDecodeErrorsDegrade(t *testing.T) {
	t0 := time.Unix(1000, 0)
	run := func(every, frames int) (*Camera, int) {
		c := New(config.Camera{ID: "x", URL: "rtsp://127.0.0.1:1/x"}, Deps{Metrics: NewMetrics(nil)})
		c.state = Online
		var n int64
		for i := range frames { // 5 fps
			if i%every == 0 {
				n++
			}
			c.noteDecodeErrors(t0.Add(time.Duration(i)*200*time.Millisecond), n, "cu_qp_delta outside the valid range")
			if c.state == Degraded {
				return c, i
			}
		}
		return c, -1
	}
	if c, at := run(4, 50); at < 0 || at > 15 {
		t.Errorf("one error every 0.8 s: degraded at frame %d (want within 3 s), state %s", at, c.state)
	}
	if c, at := run(15, 100); at >= 0 {
		t.Errorf("one error every 3 s degraded the camera at frame %d: %s", at, c.lastErr)
	}
}

// The decoder's I420 frames become the BGR the detectors expect: pure
// colours survive the round trip (within chroma rounding).
func TestI420ToBGR(t *testing.T) {
	w, h := 64, 32
	src := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	defer src.Close()
	colours := []color.RGBA{{R: 255, A: 255}, {G: 255, A: 255}, {B: 255, A: 255}, {R: 255, G: 255, B: 255, A: 255}}
	for i, c := range colours {
		gocv.Rectangle(&src, image.Rect(i*16, 0, i*16+16, h), c, -1)
	}
	yuv := gocv.NewMat()
	defer yuv.Close()
	gocv.CvtColor(src, &yuv, gocv.ColorBGRToYUVI420)
	bgr := make([]byte, w*h*3)
	if err := i420ToBGR(yuv.ToBytes(), bgr, w, h); err != nil {
		t.Fatal(err)
	}
	for i, c := range colours {
		p := (h/2*w + i*16 + 8) * 3
		got := [3]int{int(bgr[p]), int(bgr[p+1]), int(bgr[p+2])}
		want := [3]int{int(c.B), int(c.G), int(c.R)}
		for k := range 3 {
			if d := got[k] - want[k]; d > 6 || d < -6 {
				t.Errorf("colour %d: got BGR %v, want %v", i, got, want)
				break
			}
		}
	}
}

// runCamera runs cam until the test ends or stop is called (stop waits for
// Run to return; calling it again does nothing).
func runCamera(t testing.TB, cam *Camera) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cam.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}
