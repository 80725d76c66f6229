// Package e2e_test drives the guard console in a real browser: Debian's
// chromium, headless, through playwright-core (pinned in package.json) from
// a Node script, against real gateway parts on 127.0.0.1.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/gateway"
	mqttreplay "github.com/smartcommunity/warden/edge/replay/mqtt"
	"github.com/smartcommunity/warden/edge/replay/rtsp"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision/throw"
)

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// requireBrowser skips without chromium or node and installs playwright-core
// (npm ci, from the lock file) when node_modules is missing.
func requireBrowser(t *testing.T) (chromium, node string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium = chromiumPath()
	if chromium == "" {
		t.Skip("chromium not installed (apt-get install chromium, or `make deps`); set CHROMIUM to use another binary")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (apt-get install nodejs npm, or `make deps`)")
	}
	if _, err := os.Stat("node_modules/playwright-core/package.json"); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm not installed and node_modules missing (apt-get install npm, or `make deps`)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci (installs the pinned playwright-core into edge/console/e2e/node_modules): %v\n%s", err, out)
		}
	}
	return chromium, node
}

// control is the test's side channel for the Node script: it publishes
// fixtures through the real broker, cuts the browser's connection and
// restarts the gateway parts.
func control(t *testing.T, first *stack, p *proxy) (*httptest.Server, func() *stack) {
	var mu sync.Mutex
	cur := first
	current := func() *stack {
		mu.Lock()
		defer mu.Unlock()
		return cur
	}
	mux := http.NewServeMux()
	// restart stops every part, keeps the browser's connections refused for
	// down, then starts new parts on the same data directory.
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		down, _ := time.ParseDuration(r.URL.Query().Get("down"))
		mu.Lock()
		defer mu.Unlock()
		p.cut(time.Hour)
		cur.stop()
		time.Sleep(down)
		cur = startStackIn(t, cur.dir)
		p.retarget(cur.apiAddr)
		fmt.Fprintf(w, `{"api":%q}`, cur.apiAddr)
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		s := current()
		name := r.URL.Query().Get("fixture")
		if strings.ContainsAny(name, `/\`) {
			http.Error(w, "bad fixture", 400)
			return
		}
		lines, err := mqttreplay.ReadFiles(filepath.Join("testdata", name))
		if err == nil {
			err = mqttreplay.Play(r.Context(), s.devices, lines, 0, nil)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, `{"published":%d}`, len(lines))
	})
	// burst publishes n plate reads at the north gate; halfway through it
	// drops the browser's connections and keeps them refused for a while.
	mux.HandleFunc("POST /burst", func(w http.ResponseWriter, r *http.Request) {
		s := current()
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		cutAt, down := n/3, 2*time.Second
		cut := 0
		for i := range n {
			if i == cutAt {
				cut = p.cut(down)
			}
			payload := fmt.Sprintf(`{"plate":"E2E%04d","direction":"in"}`, i)
			if err := s.devices.Publish(r.Context(), "gate/north", 1, false, []byte(payload)); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			time.Sleep(15 * time.Millisecond) // a burst, but long enough to straddle the drop
		}
		fmt.Fprintf(w, `{"published":%d,"connections_cut":%d}`, n, cut)
	})
	// throw stores a camera snapshot and commits a throw.detected event that
	// names it, as the camera pipeline does.
	mux.HandleFunc("POST /throw", func(w http.ResponseWriter, r *http.Request) {
		s := current()
		img := image.NewRGBA(image.Rect(0, 0, 320, 180))
		for y := range 180 {
			for x := range 320 {
				img.Set(x, y, color.RGBA{uint8(x * 255 / 320), 40, uint8(y * 255 / 180), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, nil); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		mi, err := s.st.PutMedia("snapshot", "image/jpeg", buf.Bytes())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		e, err := event.Make(event.Origin{Gateway: "gw-e2e", Site: "e2e-site",
			Source:   event.Source{Kind: "camera", ID: "gate-cam"}, // the stack's live camera
			Location: event.Location{Building: "3", Zone: "facade"}},
			event.ThrowDetected, event.Critical, map[string]any{"origin": map[string]any{"floor": 7, "x": 512}})
		if err == nil {
			e.Media = []event.Media{{Kind: "snapshot", URL: "/api/v1/media/" + mi.ID, SHA256: mi.SHA256}}
			err = s.st.Append(r.Context(), e)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, `{"media":%q}`, mi.ID)
	})
	// evil is a page on another site (localhost vs 127.0.0.1) that posts a
	// form to the console's API, as a CSRF attack would.
	mux.HandleFunc("GET /evil", func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("target")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><form id=f method=POST action="%s" enctype="text/plain">`+
			`<input name='{"note":"' value='pwned"}'></form><script>document.getElementById('f').submit()</script>`, html.EscapeString(target))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, current
}

func TestConsoleInBrowser(t *testing.T) {
	chromium, node := requireBrowser(t)
	var sent *sendLog
	liveCameraURL, hevcCameraURL, sent = liveCamera(t)
	defer func() { liveCameraURL, hevcCameraURL = "", "" }()
	s := startStack(t)
	p := startProxy(t, s.apiAddr)
	ctl, current := control(t, s, p)
	artifacts := filepath.Join(testenv.RepoRoot(t), "test-artifacts", "console")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctlURL, _ := url.Parse(ctl.URL)
	evilBase := "http://localhost:" + ctlURL.Port() // another site than 127.0.0.1

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "console.e2e.mjs")
	cmd.Env = append(os.Environ(),
		"CHROMIUM="+chromium,
		"CONSOLE_URL=http://"+p.addr(),
		"CONTROL_URL="+ctl.URL,
		"EVIL_URL="+evilBase,
		"GUARD_USER="+userName, "GUARD_PASS="+userPass, "ADMIN_TOKEN="+adminToken,
		"ARTIFACTS="+artifacts,
	)
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := map[string]any{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		if js, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(js), &results); err != nil {
				t.Errorf("result line: %v", err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser script failed: %v\n%s", err, stderr.String())
	}
	t.Logf("gas leak → alarm on the page: %v ms; SSE opens %v; duplicate frames dropped %v; connections cut %v; live video playing after %v ms",
		results["alarm_latency_ms"], results["sse_opens"], results["duplicates_dropped"], results["connections_cut"], results["live_first_play_ms"])

	glassToGlass(t, "WebRTC", results["live_frames"], sent)
	glassToGlass(t, "LL-HLS", results["hls_frames"], sent)
	t.Logf("LL-HLS playing after %v ms; this Chromium decodes H.265: %v", results["hls_first_play_ms"], results["hevc_decodable"])

	// The API shows what the guard did in the page (on the restarted parts).
	s = current()
	// Stopping the tiles ended the WebRTC session and, 5 s (HLSIdle) after
	// its last request, the LL-HLS stream: the camera has no viewer.
	testenv.Until(t, 15*time.Second, "no live viewer left", func() bool { return s.cams[0].Viewers() == 0 })
	leak := findAlarm(t, s, "gas-3-2-201")
	if leak.State != alarm.Resolved || leak.Acknowledged == nil || leak.Acknowledged.By != userName ||
		leak.Resolved == nil || leak.Resolved.By != userName || leak.Resolved.Note != "valve closed, flat ventilated" {
		t.Errorf("gas alarm after the page acted: state %s ack %+v resolved %+v", leak.State, leak.Acknowledged, leak.Resolved)
	}
	if a := findAlarm(t, s, "gas-6-1-301"); a.State != alarm.Acknowledged || a.Acknowledged == nil || a.Acknowledged.By != userName ||
		a.Assigned == nil || a.Assigned.To != userName || a.Assigned.AcceptedAt == nil {
		t.Errorf("alarm accepted after the restart: state %s ack %+v assigned %+v", a.State, a.Acknowledged, a.Assigned)
	}
	if leak.Outcome != alarm.OutcomeReal {
		t.Errorf("resolved with outcome %q, want real", leak.Outcome)
	}
	// The calibration the page saved: an overlay the config loads with.
	cfg, err := config.Load(s.cfg.Path(), gateway.Checks...)
	if err != nil {
		t.Fatalf("config with the saved calibration: %v", err)
	}
	o, err := throw.ParseOptions("facade-cam", cfg.Cameras[0].Detect.Throw)
	if err != nil || o.Facade.Corners == nil {
		t.Fatalf("saved calibration: %+v %v", o.Facade, err)
	}
	if rl := o.Facade.Corners[0]; math.Abs(rl[0]-230) > 8 || math.Abs(rl[1]-60) > 8 {
		t.Errorf("roof-left corner saved at %v, dragged to about [230 60]", rl)
	}
	if z := cfg.Cameras[0].Detect.Regions; len(z) != 1 || !z[0].Mask || len(z[0].Points) != 3 {
		t.Errorf("saved regions %+v, want one mask of 3 points", z)
	}
	if es, err := s.audit.List(0, 1000); err != nil || !slices.ContainsFunc(es, func(e audit.Entry) bool {
		return e.Action == "camera.calibrate" && e.Target == "facade-cam" && e.Actor == "site-admin"
	}) {
		t.Errorf("no camera.calibrate audit entry by site-admin (%v)", err)
	}
	if other := findAlarm(t, s, "gas-5-1-102"); other.State != alarm.Open {
		t.Errorf("the cross-site form changed alarm %s: state %s", other.ID, other.State)
	}
	entries, err := s.audit.List(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	acts := map[string]bool{}
	for _, e := range entries {
		if e.Error == "" {
			acts[e.Actor+" "+e.Action+" "+e.Target] = true
		}
	}
	for _, a := range []string{userName + " console.login console", userName + " alarm.ack " + leak.ID,
		userName + " alarm.assign " + findAlarm(t, s, "gas-6-1-301").ID, userName + " alarm.accept " + findAlarm(t, s, "gas-6-1-301").ID,
		userName + " alarm.resolve " + leak.ID, userName + " device.open gate-north",
		"site-admin console.login console", "site-admin device.open valve-3-2-201"} {
		if !acts[a] {
			t.Errorf("audit has no %q: %+v", a, entries)
		}
	}
}

func findAlarm(t *testing.T, s *stack, source string) alarm.Alarm {
	t.Helper()
	for _, st := range []alarm.State{alarm.Open, alarm.Acknowledged, alarm.Resolved} {
		as, err := s.alarms.List(st, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Source.ID == source {
				return a
			}
		}
	}
	t.Fatalf("no alarm from %s", source)
	return alarm.Alarm{}
}

// liveCamera replays a moving test clip over RTSP on loopback for the
// console's live tile. The top-left band of every frame shows its number
// in 12 black or white 40 px blocks (bit 0 leftmost), and the log says
// when the replay sent each frame: the page reads the number off the
// picture it shows, and the difference is the glass-to-glass latency.
func liveCamera(t *testing.T) (h264URL, h265URL string, sent *sendLog) {
	t.Helper()
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "cam.mp4")
	vf := "drawbox=x=0:y=0:w=480:h=40:color=black:t=fill"
	for b := range 12 {
		vf += fmt.Sprintf(",drawbox=x=%d:y=0:w=40:h=40:color=white:t=fill:enable='mod(floor(n/%d)\\,2)'", b*40, 1<<b)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", "8", "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-g", "25", "-pix_fmt", "yuv420p", mp4).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	ts, err := rtsp.Prepare(context.Background(), mp4, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	streams := []rtsp.Stream{{Name: "cam", TS: ts}}
	if hevc := filepath.Join(dir, "hevc.ts"); cameratest.H265(t, mp4, hevc) {
		streams = append(streams, rtsp.Stream{Name: "hevc", TS: hevc})
	}
	sent = &sendLog{}
	srv := &rtsp.Server{Addr: "127.0.0.1:0", Streams: streams, OnSent: func(name string, pts int64, at time.Time) {
		if name == "cam" {
			sent.add(name, pts, at)
		}
	}}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h264URL = "rtsp://" + srv.ListenAddr() + "/cam"
	if len(streams) > 1 {
		h265URL = "rtsp://" + srv.ListenAddr() + "/hevc"
	}
	return h264URL, h265URL, sent
}

// sendLog is when the replay sent each frame number, for the last minute.
type sendLog struct {
	mu    sync.Mutex
	sends []frameSent
}

type frameSent struct {
	n  int
	at time.Time
}

func (l *sendLog) add(_ string, pts int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sends = append(l.sends, frameSent{int(pts / 3600), at}) // 25 fps
	if len(l.sends) > 1500 {
		l.sends = l.sends[len(l.sends)-1500:]
	}
}

// latest is when frame n was last sent at or before t.
func (l *sendLog) latest(n int, t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.sends) - 1; i >= 0; i-- {
		if s := l.sends[i]; s.n == n && !s.at.After(t) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// glassToGlass turns the page's samples (frame number read off the shown
// picture, and when it was shown) into latencies from the replay's send.
// It asserts that the numbers were read, not how fast they came: the
// figures go to docs/benchmarks.md.
func glassToGlass(t *testing.T, via string, raw any, sent *sendLog) {
	t.Helper()
	list, _ := raw.([]any)
	var lat []float64
	for _, x := range list {
		m, _ := x.(map[string]any)
		n, _ := m["n"].(float64)
		ms, _ := m["t"].(float64)
		shown := time.UnixMilli(int64(ms))
		if at, ok := sent.latest(int(n), shown); ok {
			lat = append(lat, float64(shown.Sub(at).Microseconds())/1000)
		}
	}
	if len(list) < 30 || len(lat) < len(list)*8/10 {
		t.Fatalf("glass-to-glass over %s: %d of %d frame numbers read off the page matched a sent frame", via, len(lat), len(list))
	}
	slices.Sort(lat)
	t.Logf("glass-to-glass (replay send → browser display, %s over loopback): %d frames, median %.0f ms, p90 %.0f ms, max %.0f ms",
		via, len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
}
