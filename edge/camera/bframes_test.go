package camera

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/motion"
)

// counterStream makes a moving 640x360 25 fps clip that shows its frame
// number n modulo 25 as a white 20x40 box at x = 20·(n mod 25) on a black
// strip at the top, encoded with the extra x264 args, and prepares it for
// replay.
func counterStream(t *testing.T, secs string, enc ...string) string {
	t.Helper()
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "src.mp4")
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i",
		"testsrc2=size=640x360:rate=25,drawbox=x=0:y=0:w=500:h=40:color=black:t=fill[a];" +
			"color=white:s=20x40:r=25[b];[a][b]overlay=x='mod(n,25)*20':y=0",
		"-t", secs}
	args = append(append(args, enc...), "-pix_fmt", "yuv420p", mp4)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ts, err := rtsp.Prepare(context.Background(), mp4, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// counterCheck is a detector that reads the frame number from the box and
// remembers it with the frame's PTS.
type counterCheck struct {
	mu   sync.Mutex
	seen [][2]int // frame number mod 25, PTS in frames
}

func (c *counterCheck) factory(config.Camera) (vision.Detector, error) { return c, nil }
func (c *counterCheck) Close()                                         {}

// Counts makes counterCheck a vision.Counting detector.
func (c *counterCheck) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{"check_frames": len(c.seen)}
}
func (c *counterCheck) Detect(f vision.Frame) []vision.Detection {
	n, best := -1, uint8(0)
	for k := range 25 {
		if v := f.Mat.GetVecbAt(20, 20*k+10)[1]; v > best {
			n, best = k, v
		}
	}
	c.mu.Lock()
	c.seen = append(c.seen, [2]int{n, int(math.Round(f.PTS.Seconds() * 25))})
	c.mu.Unlock()
	return nil
}

// check asserts that every frame's PTS matches its picture: the difference
// between PTS (in frames) and the frame number is the same for all frames
// (modulo 25), and PTS increases.
func (c *counterCheck) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) < 10 {
		t.Fatalf("only %d frames analysed", len(c.seen))
	}
	off := ((c.seen[0][1]-c.seen[0][0])%25 + 25) % 25
	bad := 0
	var sb strings.Builder
	for i, s := range c.seen {
		if o := ((s[1]-s[0])%25 + 25) % 25; o != off {
			bad++
		}
		if i > 0 && s[1] <= c.seen[i-1][1] {
			bad++
		}
		if i < 40 {
			fmt.Fprintf(&sb, " %d@%d", s[0], s[1])
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d frames have a PTS that does not match the picture or does not increase (frame@pts):%s", bad, len(c.seen), sb.String())
	}
}

// liveBFrames serves a clip encoded with enc (ffmpeg's -c:v and its
// options), runs a camera with the motion detector and a counter check, and
// checks the clip of the first motion event.
func liveBFrames(t *testing.T, secs string, enc ...string) *Metrics {
	needFFmpeg(t)
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "bf", TS: counterStream(t, secs, enc...)}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	m := NewMetrics(nil)
	cc := &counterCheck{}
	deps := Deps{Gateway: "gw", Site: "site", Sink: rec, Media: st, Metrics: m,
		Detectors:    []vision.Factory{motion.New, cc.factory},
		OfflineGrace: 10 * time.Second, StallTimeout: 5 * time.Second, MaxBackoff: time.Second}
	cam := New(config.Camera{ID: "bf", URL: "rtsp://" + srv.ListenAddr() + "/bf",
		Record: config.Record{PreSeconds: 1, PostSeconds: 2},
		Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{"min_frames": 3, "clip": true})}}, deps)
	stop := runCamera(t, cam)

	testenv.Until(t, 30*time.Second, "motion.detected with a clip", func() bool {
		evs := rec.find("motion.detected", "bf")
		if len(evs) == 0 {
			return false
		}
		_, ok := rec.clipOf(evs[0])
		return ok && testutil.ToFloat64(m.Analysed.WithLabelValues("bf")) >= 20
	})
	stop()
	cc.check(t)
	// the counts are exported every countsEvery frames
	want := cc.Counts()["check_frames"]
	if got := int(testutil.ToFloat64(m.Counts.WithLabelValues("bf", "check_frames"))); got == 0 || got > want || got < want-countsEvery {
		t.Errorf("warden_camera_detector_counts_total{counter=check_frames} = %d, the detector counted %d", got, want)
	}
	clipMedia, _ := rec.clipOf(rec.find("motion.detected", "bf")[0])
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(clip, readMedia(t, st, clipMedia), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCodec := map[string]string{"libx264": "h264", "libx265": "hevc"}[enc[1]]
	codec, dur := probe(t, clip)
	if codec != wantCodec || dur < 2 || dur > 4 {
		t.Fatalf("clip is %s of %.2fs, want %s of 3±1 s", codec, dur, wantCodec)
	}
	// every frame of the clip decodes, up to the last (a cut between a
	// reference frame and the B-frames shown before it, or a wrong edit
	// list, loses frames at the end)
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_frames,nb_read_frames", "-of", "csv=p=0", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	var stored, decoded int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d,%d", &stored, &decoded); err != nil || stored < 50 || decoded != stored {
		t.Errorf("clip has %d frames, %d decode (ffprobe %q)", stored, decoded, out)
	}
	for _, kind := range []string{"dts", "rtp", "decode", "media"} {
		if n := testutil.ToFloat64(m.Errors.WithLabelValues("bf", kind)); n != 0 {
			t.Errorf("%v %s errors counted", n, kind)
		}
	}
	return m
}

// TestLiveBFrames: High profile with B-frames, as IP cameras send it. Frames
// reach the detectors with the PTS of their picture, the clip is complete.
func TestLiveBFrames(t *testing.T) {
	liveBFrames(t, "6", "-c:v", "libx264", "-profile:v", "high", "-bf", "2", "-g", "25")
}

// TestLiveH265: a camera whose only stream is H.265 (with B-frames) is
// analysed like an H.264 one, and its clips are H.265.
func TestLiveH265(t *testing.T) {
	needX265(t)
	liveBFrames(t, "6", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=2:log-level=error")
}

// needX265 skips where this ffmpeg cannot encode H.265.
func needX265(t *testing.T) {
	t.Helper()
	needFFmpeg(t)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1",
		"-c:v", "libx265", "-x265-params", "log-level=error", "-f", "null", "-").CombinedOutput(); err != nil {
		t.Skipf("ffmpeg cannot encode H.265 here: %v: %s", err, out)
	}
}

// TestLiveBFramesLongGOP: x264 defaults as throwsim writes them (3 B-frames,
// pyramid, a key frame only at the start of the 6 s loop). Until that key
// frame no unit is usable, yet the session must not be dropped as stalled.
func TestLiveBFramesLongGOP(t *testing.T) {
	m := liveBFrames(t, "6", "-c:v", "libx264", "-preset", "veryfast")
	if n := testutil.ToFloat64(m.Reconnects.WithLabelValues("bf")); n != 0 {
		t.Errorf("%v reconnects while waiting for the key frame", n)
	}
}

// TestClipDTSAndCleanEnd: DTS come from the PTS of the whole clip (exact,
// no warm-up), and a clip never ends between a reference frame and the
// B-frames shown before it.
func TestClipDTSAndCleanEnd(t *testing.T) {
	const f = 3600
	// decode order I0 P3 B1 B2 P6 B4 B5 I7 (PTS in frames from 10)
	order := []int64{0, 3, 1, 2, 6, 4, 5, 7}
	var units []unit
	for i, n := range order {
		units = append(units, unit{pts: (10 + n) * f, idr: i == 0 || i == 7})
	}
	dts, delay := clipDTS(units)
	if delay != f { // B1 is decoded third, shown second
		t.Errorf("delay %d, want one frame", delay)
	}
	for i, u := range units {
		if dts[i] > u.pts || (i > 0 && dts[i]-dts[i-1] != f) {
			t.Fatalf("unit %d: dts %d pts %d (all %v)", i, dts[i], u.pts, dts)
		}
	}
	// a broken camera repeating a PTS still gets increasing DTS
	dup := []unit{{pts: 0}, {pts: 0}, {pts: f}}
	if d, _ := clipDTS(dup); !(d[0] < d[1] && d[1] < d[2]) {
		t.Errorf("dts %v not increasing", d)
	}
	// ends 2 and 3 (I0 P3, I0 P3 B1) have no clean cut but after the key
	// frame: the window is kept rather than cut to one frame
	for end, want := range map[int]int{8: 8, 7: 7, 6: 4, 5: 4, 4: 4, 3: 3, 2: 2} {
		if got := cleanEnd(units, end); got != want {
			t.Errorf("cleanEnd(%d) = %d, want %d", end, got, want)
		}
	}
}

// TestKeyFramesOnly: a camera analysed at 1 fps whose key frames come every
// 0.8 s (and whose frames are not reordered, as most cameras send them)
// decodes those alone, each as it arrives, with its own PTS (key frames
// show 0, 20, 15, 10, 5 on the counter); one analysed at 5 fps on the same
// stream decodes every unit.
func TestKeyFramesOnly(t *testing.T) {
	needFFmpeg(t)
	keyFramesOnly(t, "-c:v", "libx264", "-bf", "0", "-g", "20")
}

// TestKeyFramesOnlyH265: the same for H.265 (its own access unit delimiter).
func TestKeyFramesOnlyH265(t *testing.T) {
	needX265(t)
	keyFramesOnly(t, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=20:min-keyint=20:scenecut=0:bframes=0:log-level=error")
}

func keyFramesOnly(t *testing.T, enc ...string) {
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "k", TS: counterStream(t, "4", enc...)}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := storetest.Open(t, store.Options{})
	m := NewMetrics(nil)
	cc := &counterCheck{}
	deps := Deps{Gateway: "gw", Site: "site", Sink: &recorder{st: st}, Media: st, Metrics: m,
		Detectors: []vision.Factory{cc.factory}, StallTimeout: 5 * time.Second, MaxBackoff: time.Second}
	url := "rtsp://" + srv.ListenAddr() + "/k"
	slow := New(config.Camera{ID: "slow", URL: url, Detect: config.Detect{FPS: 1}}, deps)
	fast := New(config.Camera{ID: "fast", URL: url, Detect: config.Detect{FPS: 5}}, Deps{Gateway: "gw", Site: "site",
		Sink: &recorder{st: st}, Media: st, Metrics: m, StallTimeout: 5 * time.Second, MaxBackoff: time.Second})
	stopSlow, stopFast := runCamera(t, slow), runCamera(t, fast)
	testenv.Until(t, 40*time.Second, "10 frames analysed at 1 fps", func() bool {
		return testutil.ToFloat64(m.Analysed.WithLabelValues("slow")) >= 10
	})
	stopSlow()
	stopFast()
	cc.check(t)
	slowFed, analysed := testutil.ToFloat64(m.Fed.WithLabelValues("slow")), testutil.ToFloat64(m.Analysed.WithLabelValues("slow"))
	fastFed, dec := testutil.ToFloat64(m.Fed.WithLabelValues("fast")), testutil.ToFloat64(m.Decoded.WithLabelValues("fast"))
	t.Logf("1 fps camera: %v units fed, %v decoded, %v frames analysed; 5 fps camera: %v fed, %v decoded", slowFed, testutil.ToFloat64(m.Decoded.WithLabelValues("slow")), analysed, fastFed, dec)
	var lat dto.Metric
	_ = m.DecodeLat.WithLabelValues("slow").(prometheus.Histogram).Write(&lat)
	// held until the next key frame arrives, a frame waits 0.8 s; the
	// first one also waits for ffmpeg to start
	quick := uint64(0)
	for _, b := range lat.Histogram.GetBucket() {
		if b.GetUpperBound() == 0.5 {
			quick = b.GetCumulativeCount()
		}
	}
	t.Logf("1 fps camera: %d of %d key frames left the decoder within 0.5 s", quick, lat.Histogram.GetSampleCount())
	if quick*2 < lat.Histogram.GetSampleCount() {
		t.Errorf("most key frames wait over 0.5 s in the decoder: each is held until the next comes")
	}
	if slowFed > analysed+1 || slowFed*10 > fastFed {
		t.Errorf("the 1 fps camera fed %v units to its decoder for %v frames analysed (the 5 fps one %v); want key frames only", slowFed, analysed, fastFed)
	}
	if dec < 10 || fastFed < 4*dec {
		t.Errorf("the 5 fps camera fed %v units for %v frames out; want every unit (25 fps) decoded", fastFed, dec)
	}
}
