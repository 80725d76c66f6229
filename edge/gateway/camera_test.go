package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/testenv"
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
