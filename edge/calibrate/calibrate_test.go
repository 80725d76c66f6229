package calibrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/calibrate"
	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision/throw"
)

// Saves of two cameras at once both land: each rewrites the whole overlay,
// so one must not drop the other's.
func TestConcurrentSavesKeepEveryCamera(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "warden.yaml")
	y := fmt.Sprintf(`gateway: {id: gw, data_dir: %q}
cameras:
  - {id: a, url: %q, detect: {fps: 25, throw: {facade: {top_y: 60, bottom_y: 660, left_x: 240, right_x: 1040, floors: 18}}}}
  - {id: b, url: %q, detect: {fps: 25, throw: {facade: {top_y: 60, bottom_y: 660, left_x: 240, right_x: 1040, floors: 18}}}}
`, filepath.Join(dir, "data"), filepath.Join(dir, "a.mp4"), filepath.Join(dir, "b.mp4"))
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	cfg, err := config.Load(path, throw.Check)
	if err != nil {
		t.Fatal(err)
	}
	var cams camera.Set
	for _, c := range cfg.Cameras {
		cams = append(cams, camera.New(c, camera.Deps{})) // not running: a save is kept for its start
	}
	cal := calibrate.New(calibrate.Options{Config: cfg, Cameras: cams,
		Validate: func(ov []byte) (*config.Config, error) { return config.LoadWith(path, ov, throw.Check) }})
	srv := apitest.Serve(t, api.Options{}, api.Handlers{Calibration: cal.HTTP()})
	for round := range 10 {
		floors := 10 + round
		var wg sync.WaitGroup
		for _, id := range []string{"a", "b"} {
			wg.Go(func() {
				body := fmt.Sprintf(`{"facade": {"corners": [[420, 40], [860, 40], [1140, 680], [140, 680]], "floors": %d, "lowest_floor": 1}, "zones": []}`, floors)
				if code, out := apitest.Do(t, "PUT", srv.URL+"/api/v1/cameras/"+id+"/calibration", apitest.Admin, body); code != 200 {
					t.Errorf("PUT %s: %d %v", id, code, out)
				}
			})
		}
		wg.Wait()
		saved, err := config.Load(path, throw.Check)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range saved.Cameras {
			o, err := throw.ParseOptions(c.ID, c.Detect.Throw)
			if err != nil || o.Facade.Corners == nil || o.Facade.Floors != floors {
				t.Fatalf("round %d: camera %s has %+v (%v): a save was lost", round, c.ID, o.Facade, err)
			}
		}
	}
	// a guard may not calibrate
	if code, _ := apitest.Do(t, "GET", srv.URL+"/api/v1/cameras/a/calibration", apitest.Guard, nil); code != 403 {
		t.Errorf("guard GET: %d, want 403", code)
	}
}
