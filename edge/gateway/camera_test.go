package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision/throw/throwsim"
)

// A camera replayed over real RTSP is analysed by the gateway: motion
// becomes an event whose snapshot is served by the API, and the camera
// shows online.
func TestCameraMotionThroughGateway(t *testing.T) {
	cameratest.NeedFFmpeg(t)
	dir := t.TempDir()
	clip := filepath.Join(dir, "moving.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", "6", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	rtspAddr := replayRTSP(t, "gate-cam", clip)

	s := newSite(t, "", counterDevice+fmt.Sprintf(`cameras:
  - id: gate-cam
    url: rtsp://%s/gate-cam
    location: {zone: north-gate}
    detect: {fps: 5, motion: {}}
`, rtspAddr))
	s.start()

	var media []struct{ Kind, URL string }
	testenv.Eventually(t, 60*time.Second, "motion event with a snapshot", func() (bool, string) {
		var page struct {
			Events []struct {
				Type  string
				Media []struct{ Kind, URL string }
			}
		}
		if err := s.apiGet("/api/v1/events?type=motion.", &page); err != nil {
			return false, err.Error()
		}
		for _, e := range page.Events {
			if len(e.Media) > 0 {
				media = e.Media
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d motion events, none with media yet", len(page.Events))
	})
	var snap string
	for _, m := range media {
		if m.Kind == "snapshot" {
			snap = m.URL
		}
	}
	if snap == "" {
		t.Fatalf("no snapshot in %+v", media)
	}
	req, _ := http.NewRequest("GET", "http://"+s.apiAddr+snap, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) < 1000 || body[0] != 0xff || body[1] != 0xd8 {
		t.Fatalf("snapshot: %s %s, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	var cams []struct {
		ID     string
		Online bool
		FPS    float64
	}
	if err := s.apiGet("/api/v1/cameras", &cams); err != nil {
		var wrapped struct {
			Cameras []struct {
				ID     string
				Online bool
				FPS    float64
			}
		}
		if err := s.apiGet("/api/v1/cameras", &wrapped); err != nil {
			t.Fatal(err)
		}
		cams = wrapped.Cameras
	}
	if len(cams) != 1 || cams[0].ID != "gate-cam" || !cams[0].Online {
		t.Errorf("cameras = %+v", cams)
	}
	if !strings.Contains(s.log(), "gate-cam") {
		t.Errorf("no log line names the camera")
	}
}

// The installer calibrates a throw camera that looks up at its facade,
// from the console's API on the running gateway: the test replays the
// camera's recent video through the proposed corners and reports the
// throw's floor with its trajectory picture; a bad proposal
// is refused naming the key; the saved overlay passes check-config, is
// audited and takes effect on the running camera without a restart.
func TestCalibrateThrowCamera(t *testing.T) {
	cameratest.NeedFFmpeg(t)
	o := throwsim.DefaultOptions()
	o.W, o.H, o.Seconds, o.NegFrac = 640, 360, 5, 0
	o.Floors, o.Size = [2]int{14, 16}, [2]int{8, 12}
	o.Perspective, o.Distractors = true, []string{"clouds"}
	dir := t.TempDir()
	tr, err := throwsim.One(dir, "facade", 77, o)
	if err != nil {
		t.Fatal(err)
	}
	floor := tr.Throws[0].ReleaseFloor
	c := tr.Corners
	rtspAddr := replayRTSP(t, "facade-3", tr.Clip)
	// set up as before perspective: the best rectangle
	s := newSite(t, "", counterDevice+fmt.Sprintf(`cameras:
  - id: facade-3
    url: rtsp://%s/facade-3
    detect:
      fps: 25
      throw: {facade: {top_y: %v, bottom_y: %v, left_x: %v, right_x: %v, floors: %d}}
  - {id: gate-cam, url: "rtsp://%s/none", detect: {motion: {}}}
`, rtspAddr, c[0][1], c[2][1], c[3][0], c[2][0], tr.Facade.Floors, rtspAddr))
	s.start()
	const path = "/api/v1/cameras/facade-3/calibration"

	var got struct {
		Facade struct {
			Corners [][]float64 `json:"corners"`
			Floors  int         `json:"floors"`
		} `json:"facade"`
	}
	if err := s.apiGet(path, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Facade.Corners) != 4 || got.Facade.Corners[0][1] != c[0][1] || got.Facade.Floors != tr.Facade.Floors {
		t.Fatalf("GET calibration: %+v", got)
	}

	for _, bad := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/cameras/gate-cam/calibration", "", 409, "calibration_not_throw"},
		{"GET", "/api/v1/cameras/nope/calibration", "", 404, "not_found"},
		{"PUT", path, `{"facade": {"corners": "` + strings.Repeat("x", 2<<20) + `"}}`, 413, "too_large"},
		{"POST", path + "/test", `{"facade": {"corners": [[1, 2]], "floors": "ten"}}`, 400, "bad_request"},
	} {
		if code, body := s.apiDo(bad.method, bad.path, bad.body); code != bad.code || !strings.Contains(string(body), bad.want) {
			t.Errorf("%s %s: %d %.200s, want %d %s", bad.method, bad.path, code, body, bad.code, bad.want)
		}
	}

	corners, _ := json.Marshal(c)
	proposal := fmt.Sprintf(`{"facade": {"corners": %s, "floors": %d, "lowest_floor": 1},
		"zones": [{"name": "flag", "mask": true, "points": [[0, 0], [40, 0], [40, 30]]}]}`, corners, tr.Facade.Floors)
	type result struct {
		Seconds float64
		Alarms  []struct {
			Data  map[string]any
			Image string
		}
	}
	var res result
	testenv.Eventually(t, 90*time.Second, "a test that finds the throw", func() (bool, string) {
		code, body := s.apiDo("POST", path+"/test", proposal)
		if code != 200 {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		res = result{}
		if err := json.Unmarshal(body, &res); err != nil {
			return false, err.Error()
		}
		return len(res.Alarms) > 0, fmt.Sprintf("%.1f s replayed, no alarm", res.Seconds)
	})
	for _, a := range res.Alarms {
		o := a.Data["origin"].(map[string]any)
		if f := int(o["floor"].(float64)); f != floor {
			t.Errorf("test reports floor %d, the throw was from %d (%v)", f, floor, o)
		}
		if !strings.HasPrefix(a.Image, "data:image/jpeg;base64,") {
			t.Errorf("no trajectory picture: %.40q", a.Image)
		}
	}

	overlay := filepath.Join(s.dir, "data", "calibration.yaml")
	bad := strings.Replace(proposal, `"floors": `, `"floors": 0, "x": `, 1)
	if code, body := s.apiDo("PUT", path, bad); code != 400 {
		t.Errorf("unknown field: %d %s", code, body)
	}
	swapped := fmt.Sprintf(`{"facade": {"corners": [[%v,%v],[%v,%v],[%v,%v],[%v,%v]], "floors": 15}, "zones": []}`,
		c[1][0], c[1][1], c[0][0], c[0][1], c[2][0], c[2][1], c[3][0], c[3][1])
	code, body := s.apiDo("PUT", path, swapped)
	if code != 400 || !strings.Contains(string(body), "calibration_invalid") || !strings.Contains(string(body), "corners[1]") {
		t.Errorf("roof corners swapped: %d %s", code, body)
	}
	if _, err := os.Stat(overlay); !os.IsNotExist(err) {
		t.Fatalf("a refused calibration left %s: %v", overlay, err)
	}

	var since uint64
	evs, err := s.allEvents("")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		since = max(since, e.Seq)
	}
	code, body = s.apiDo("PUT", path, proposal)
	saved := time.Now()
	if code != 200 || !strings.Contains(string(body), `"applied":true`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if out, err := exec.Command(wardenBinary(t), "check-config", "--config", s.cfgPath).CombinedOutput(); err != nil {
		t.Errorf("check-config with the saved overlay: %v\n%s", err, out)
	}
	if err := s.apiGet(path, &got); err != nil || got.Facade.Corners[0][0] != c[0][0] {
		t.Errorf("GET after PUT: %+v %v", got, err)
	}
	if code, body := s.apiRaw("/api/v1/audit"); code != 200 || !strings.Contains(string(body), "camera.calibrate") {
		t.Errorf("audit: %d %s", code, body)
	}
	// the running camera now reports the right floor: on a loop of the
	// clip that began after the save (the new detector may start mid-fall,
	// and an alarm of the old one may still be on its way)
	fresh := saved.Add(time.Duration(o.Seconds * float64(time.Second)))
	testenv.Eventually(t, 60*time.Second, "a live throw.detected after the save", func() (bool, string) {
		evs, err := s.allEvents("throw.")
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			if e.Seq > since && e.Time.After(fresh) {
				o := e.Data["origin"].(map[string]any)
				if f := int(o["floor"].(float64)); f != floor {
					t.Errorf("live alarm after the save: floor %d, want %d", f, floor)
				}
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d throw events, none after the save", len(evs))
	})

	// a damaged overlay fails check-config with its own file and line
	if err := os.WriteFile(overlay, []byte("cameras:\n  facade-3:\n    detect: {fps: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wardenBinary(t), "check-config", "--config", s.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "calibration.yaml:3") {
		t.Errorf("check-config with a damaged overlay: %v\n%s", err, out)
	}
}
