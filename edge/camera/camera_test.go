package camera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed: %v", b, err)
		}
	}
}

// testStream makes a moving 640x360 H.264 clip and prepares it for replay.
func testStream(t *testing.T, secs int) string { return testStreamGOP(t, secs, 25) }

// testStreamGOP is testStream with a key frame every gop frames.
func testStreamGOP(t *testing.T, secs, gop int) string {
	t.Helper()
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "src.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", strconv.Itoa(secs), "-c:v", "libx264", "-preset", "ultrafast", "-g", strconv.Itoa(gop), "-pix_fmt", "yuv420p", mp4).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ts, err := rtsp.Prepare(context.Background(), mp4, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// recorder is a Sink that appends to the real store and remembers events.
type recorder struct {
	st *store.Store
	mu sync.Mutex
	ev []*event.Event
}

func (r *recorder) Append(ctx context.Context, evs ...*event.Event) error {
	r.mu.Lock()
	r.ev = append(r.ev, evs...)
	r.mu.Unlock()
	return r.st.Append(ctx, evs...)
}

func (r *recorder) find(typ, cam string) []*event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*event.Event
	for _, e := range r.ev {
		if e.Type == typ && e.Source.ID == cam {
			out = append(out, e)
		}
	}
	return out
}

// clipOf is the clip that a media.added event brought to ev, if any yet.
func (r *recorder) clipOf(ev *event.Event) (event.Media, bool) {
	for _, a := range r.find(event.MediaAdded, ev.Source.ID) {
		if a.Data["event_id"] == ev.ID && a.Data["event_type"] == ev.Type {
			for _, m := range a.Media {
				if m.Kind == "clip" {
					return m, true
				}
			}
		}
	}
	return event.Media{}, false
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// halfServer answers every RTSP request with half a response and hangs up:
// a stream that stops mid-message.
func halfServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_, _ = io.WriteString(c, "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 500\r\n\r\nv=0\r\n")
			c.Close()
		}
	}()
	return l.Addr().String()
}

func TestLiveCameras(t *testing.T) {
	needFFmpeg(t)
	ts := testStream(t, 4)
	addr := freeAddr(t)
	srv := &rtsp.Server{Addr: addr, Streams: []rtsp.Stream{{Name: "a", TS: ts}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close() }()

	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	m := NewMetrics(nil)
	deps := Deps{Gateway: "gw", Site: "site", Sink: rec, Media: st, Metrics: m,
		OfflineGrace: time.Second, StallTimeout: 2 * time.Second, MaxBackoff: time.Second}
	good := config.Camera{ID: "a", URL: "rtsp://" + addr + "/a",
		Record: config.Record{PreSeconds: 1, PostSeconds: 2},
		Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{"min_frames": 10, "clip": true})}}
	bad := []config.Camera{
		{ID: "notfound", URL: "rtsp://" + addr + "/nope"},
		{ID: "refused", URL: "rtsp://" + freeAddr(t) + "/x"},
		{ID: "garbled", URL: "rtsp://" + halfServer(t) + "/x"},
		{ID: "badurl", URL: "rtsp://[::1/x"},
		{ID: "secret", URL: "rtsp://admin:s3cret@[::1/x"},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	cams := map[string]*Camera{}
	for _, cfg := range append([]config.Camera{good}, bad...) {
		c := New(cfg, deps)
		cams[cfg.ID] = c
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()

	// motion fires at once with a snapshot; a clip of about pre+post
	// seconds follows as media.added
	testenv.Until(t, 30*time.Second, "motion.detected with media", func() bool { return len(rec.find("motion.detected", "a")) > 0 })
	ev := rec.find("motion.detected", "a")[0]
	kinds := map[string]event.Media{}
	for _, m := range ev.Media {
		kinds[m.Kind] = m
	}
	if len(kinds) != 1 || kinds["snapshot"].URL == "" {
		t.Fatalf("media at detection %+v, want the snapshot only", ev.Media)
	}
	testenv.Until(t, 30*time.Second, "the clip as media.added", func() bool { _, ok := rec.clipOf(ev); return ok })
	kinds["clip"], _ = rec.clipOf(ev)
	jpg := readMedia(t, st, kinds["snapshot"])
	img, err := gocv.IMDecode(jpg, gocv.IMReadColor)
	if err != nil || img.Empty() || img.Cols() != 640 {
		t.Fatalf("snapshot does not decode to 640 wide: %v", err)
	}
	// motion reads the luma plane alone; the pictures must still be colour
	needColour(t, "event snapshot", img)
	img.Close()
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(clip, readMedia(t, st, kinds["clip"]), 0o600); err != nil {
		t.Fatal(err)
	}
	codec, dur := probe(t, clip)
	if codec != "h264" || dur < 2 || dur > 4 {
		t.Fatalf("clip is %s of %.2fs, want h264 of 3±1 s", codec, dur)
	}
	s := cams["a"].Status()
	if s.State != Online || s.LastFrame.IsZero() {
		t.Fatalf("status %+v", s)
	}
	inState(t, m, "a", Online)
	if got := (Set{cams["a"], cams["badurl"]}).Status(); got[0].Codec != "h264" || got[1].Codec != "" {
		t.Errorf("camera list codecs %q and %q, want h264 and none (no video yet)", got[0].Codec, got[1].Codec)
	}
	j, _ := cams["a"].LastSnapshot()
	if len(j) == 0 {
		t.Fatal("no last snapshot")
	}
	last, err := gocv.IMDecode(j, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	needColour(t, "API snapshot", last)
	last.Close()
	// "last 30 s": what the ring holds, as a playable MP4, no re-encoding
	recent, err := cams["a"].Recent(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rpath := filepath.Join(t.TempDir(), "recent.mp4")
	if err := os.WriteFile(rpath, recent, 0o600); err != nil {
		t.Fatal(err)
	}
	since := time.Since(start).Seconds()
	if codec, dur := probe(t, rpath); codec != "h264" || dur < 2 || dur > since+1 {
		t.Fatalf("recent video is %s of %.2fs after %.1fs of streaming", codec, dur, since)
	}
	if _, err := cams["badurl"].Recent(30 * time.Second); !errors.Is(err, ErrNoVideo) {
		t.Fatalf("recent video of a camera that never sent any: %v", err)
	}

	// every bad camera goes offline once, with a reason, and nothing panics
	for _, b := range bad {
		testenv.Until(t, 20*time.Second, b.ID+" offline", func() bool { return len(rec.find(event.CameraOffline, b.ID)) > 0 })
		inState(t, m, b.ID, Offline)
	}
	if r := cams["notfound"].Status().LastError; !strings.Contains(r, "404") {
		t.Errorf("notfound last error %q does not say 404", r)
	}
	// the password of a camera URL is never in its error or offline reason
	if r := cams["secret"].Status().LastError; r == "" || strings.Contains(r, "s3cret") {
		t.Errorf("secret last error %q", r)
	}
	for _, e := range rec.find(event.CameraOffline, "secret") {
		if strings.Contains(fmt.Sprint(e.Data), "s3cret") {
			t.Errorf("camera.offline carries the password: %v", e.Data)
		}
	}

	// kill the server: one camera.offline; restart: one camera.online
	// (a slow start may already have produced a pair; count from here)
	off0, on0 := len(rec.find(event.CameraOffline, "a")), len(rec.find(event.CameraOnline, "a"))
	if off0 != on0 {
		t.Fatalf("%d offline and %d online events before the kill", off0, on0)
	}
	srv.Close()
	testenv.Until(t, 20*time.Second, "a offline", func() bool { return len(rec.find(event.CameraOffline, "a")) > off0 })
	inState(t, m, "a", Offline)
	time.Sleep(3 * time.Second) // several failed redials
	if n := len(rec.find(event.CameraOffline, "a")) - off0; n != 1 {
		t.Fatalf("%d camera.offline events, want 1", n)
	}
	srv = &rtsp.Server{Addr: addr, Streams: []rtsp.Stream{{Name: "a", TS: ts}}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Until(t, 20*time.Second, "a online", func() bool { return len(rec.find(event.CameraOnline, "a")) > on0 })
	inState(t, m, "a", Online)
	if r := cams["a"].Status().LastError; r != "" {
		t.Errorf("after recovery the camera still reports the old error %q", r)
	}
	time.Sleep(2 * time.Second)
	if n := len(rec.find(event.CameraOnline, "a")) - on0; n != 1 {
		t.Fatalf("%d camera.online events, want 1", n)
	}
	for _, b := range bad {
		if n := len(rec.find(event.CameraOffline, b.ID)); n != 1 {
			t.Errorf("%s: %d offline events, want 1", b.ID, n)
		}
	}
	for _, e := range rec.ev {
		if err := e.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestWrongCredentials(t *testing.T) {
	needFFmpeg(t)
	ts := testStream(t, 2)
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: []rtsp.Stream{{Name: "a", TS: ts}}, User: "admin", Pass: "s3cret"}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := storetest.Open(t, store.Options{})
	rec := &recorder{st: st}
	deps := Deps{Gateway: "gw", Site: "site", Sink: rec, OfflineGrace: time.Second, StallTimeout: 2 * time.Second, MaxBackoff: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	right := New(config.Camera{ID: "right", URL: "rtsp://admin:s3cret@" + srv.ListenAddr() + "/a"}, deps)
	wrong := New(config.Camera{ID: "wrong", URL: "rtsp://admin:nope@" + srv.ListenAddr() + "/a"}, deps)
	for _, c := range []*Camera{right, wrong} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()
	testenv.Until(t, 20*time.Second, "wrong offline", func() bool { return len(rec.find(event.CameraOffline, "wrong")) > 0 })
	if r := wrong.Status().LastError; !strings.Contains(r, "credentials") {
		t.Errorf("last error %q does not mention credentials", r)
	}
	testenv.Until(t, 20*time.Second, "frames on the right camera", func() bool { return right.Status().State == Online && !right.Status().LastFrame.IsZero() })
	if strings.Contains(rec.find(event.CameraOffline, "wrong")[0].Data["reason"].(string), "nope") {
		t.Error("password leaked into the event")
	}
}

func readMedia(t *testing.T, st *store.Store, m event.Media) []byte {
	t.Helper()
	id := strings.TrimPrefix(m.URL, "/api/v1/media/")
	f, _, err := st.OpenMedia(id)
	if err != nil {
		t.Fatalf("media %s: %v", m.URL, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probe(t *testing.T, path string) (string, float64) {
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
		"stream=codec_name:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p struct {
		Streams []struct {
			Codec string `json:"codec_name"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return p.Streams[0].Codec, d
}

// sharedData is the path of rel under ../shared/data, or skips.
func sharedData(t *testing.T, rel string) string {
	return filepath.Join(testenv.SharedData(t, rel), rel)
}

func TestAnalyzeIsDeterministic(t *testing.T) {
	avi := sharedData(t, "video/vtest_first200_xvid.avi")
	cam := config.Camera{ID: "hall", Detect: config.Detect{FPS: 5, Motion: config.SectionOf(map[string]any{"cooldown_seconds": 2})}}
	run := func() string {
		var b strings.Builder
		err := Analyze(context.Background(), AnalyzeOptions{Gateway: "gw", Site: "s", Camera: cam}, avi, func(e *event.Event) {
			j, _ := json.Marshal(e)
			b.Write(j)
			b.WriteByte('\n')
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("two runs differ:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(a, `"type":"motion.detected"`) || !strings.Contains(a, `"time":"1970-01-01T00:00:0`) {
		t.Fatalf("no motion on the video timeline:\n%s", a)
	}
	var ev event.Event
	if err := json.Unmarshal([]byte(strings.SplitN(a, "\n", 2)[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAnalyzeRejectsNonVideo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "notes.mp4")
	if err := os.WriteFile(bad, []byte("this is not a video"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(t.TempDir(), "missing.mp4")} {
		err := Analyze(context.Background(), AnalyzeOptions{Camera: config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{})}}}, p, func(*event.Event) {})
		if err == nil || !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: err %v, want ErrUnreadable", p, err)
		}
	}
}

func TestScrubHidesTheCameraPassword(t *testing.T) {
	for _, c := range []struct{ url, err, pw string }{
		{"rtsp://admin:s3cret@10.0.0.5/ch1", "dial rtsp://admin:s3cret@10.0.0.5/ch1: refused", "s3cret"},
		{"rtsp://admin:s3cret@[::1/x", `bad url: parse "rtsp://admin:s3cret@[::1/x": missing ']' in host`, "s3cret"},
		{"rtsp://admin:p@ss\"w@10.0.0.5/", `parse "rtsp://admin:p@ss\"w@10.0.0.5/": bad`, "p@ss"},
	} {
		got := scrub(errors.New(c.err), c.url).Error()
		if strings.Contains(got, c.pw) || !strings.Contains(got, "admin:xxxxx@") {
			t.Errorf("scrub(%q) = %q", c.err, got)
		}
	}
	if got := scrub(errors.New("connection refused"), "rtsp://10.0.0.5/").Error(); got != "connection refused" {
		t.Errorf("no user info: %q", got)
	}
}

// needColour fails when img is grey: testsrc2's bars differ between blue and
// red by far more than a JPEG of a grey picture does.
func needColour(t *testing.T, what string, img gocv.Mat) {
	t.Helper()
	ch := gocv.Split(img)
	defer func() {
		for _, c := range ch {
			c.Close()
		}
	}()
	diff := gocv.NewMat()
	defer diff.Close()
	gocv.AbsDiff(ch[0], ch[2], &diff)
	if mean := diff.Mean().Val1; mean < 20 {
		t.Errorf("%s is grey (mean |B-R| %.1f)", what, mean)
	}
}

// inState waits for warden_camera_state to show the camera in want, and
// only in want (the gauge follows the state within a health tick).
func inState(t *testing.T, m *Metrics, id string, want State) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, "warden_camera_state of "+id+" = "+string(want), func() (bool, string) {
		var got []string
		for _, st := range states {
			if v := testutil.ToFloat64(m.State.WithLabelValues(id, string(st))); v != 0 {
				got = append(got, fmt.Sprintf("%s=%g", st, v))
			}
		}
		return len(got) == 1 && got[0] == string(want)+"=1", strings.Join(got, " ")
	})
}
