package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision/throw"
)

// throwSite writes a config with one throw camera (frontal calibration)
// and one face camera; data is its data_dir.
func throwSite(t *testing.T) (path, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "warden.yaml")
	cfg := `gateway: {id: gw, site: s, data_dir: ` + data + `}
cameras:
  - id: facade-3
    url: rtsp://127.0.0.1:8554/facade-3
    detect:
      fps: 25
      throw:
        facade: {top_y: 60, bottom_y: 660, left_x: 240, right_x: 1040, floors: 18}
        min_floors: 3
      zones: [{name: tree, mask: true, points: [[0,0],[200,0],[200,300]]}]
  - id: gate
    url: rtsp://127.0.0.1:8554/gate
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestOverlayReplacesFacadeAndZones(t *testing.T) {
	path, data := throwSite(t)
	overlay := `cameras:
  facade-3:
    detect:
      throw:
        facade: {corners: [[420, 40], [860, 40], [1140, 680], [140, 680]], floors: 20, lowest_floor: 2}
      zones:
        - {name: flag, mask: true, points: [[10, 10], [60, 10], [60, 90]]}
        - {name: facade, points: [[100, 0], [1200, 0], [1200, 700], [100, 700]]}
`
	if err := os.WriteFile(filepath.Join(data, config.OverlayName), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, throw.Check)
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Cameras[0]
	o, err := throw.ParseOptions("t", cam.Detect.Throw)
	if err != nil {
		t.Fatal(err)
	}
	if o.Facade.Corners == nil || o.Facade.Floors != 20 || o.Facade.LowestFloor != 2 {
		t.Errorf("facade %+v: the overlay's was not applied", o.Facade)
	}
	if o.MinFloors != 3 {
		t.Errorf("min_floors %v: keys beside the facade must stay the file's", o.MinFloors)
	}
	if len(cam.Detect.Regions) != 2 || cam.Detect.Regions[0].Name != "flag" {
		t.Errorf("zones %+v", cam.Detect.Regions)
	}
	// Parse (bytes, no files) never reads an overlay
	raw, _ := os.ReadFile(path)
	c2, err := config.Parse(path, raw, throw.Check)
	if err != nil {
		t.Fatal(err)
	}
	if o2, _ := throw.ParseOptions("t", c2.Cameras[0].Detect.Throw); o2.Facade.Corners != nil {
		t.Error("Parse applied the overlay")
	}
}

func TestOverlayProblemsNameItsLines(t *testing.T) {
	cases := []struct{ name, overlay, want string }{
		{"unknown camera", "cameras:\n  facade-9:\n    detect: {zones: []}\n", "calibration.yaml:2: cameras.facade-9: no camera has id"},
		{"not a throw camera", "cameras:\n  gate:\n    detect:\n      throw:\n        facade: {floors: 3}\n", "calibration.yaml:5: cameras.gate.detect.throw.facade: camera gate has no detect.throw"},
		{"unknown key", "cameras:\n  facade-3:\n    detect:\n      fps: 5\n", "calibration.yaml:4: (syntax)"},
		{"bad corners", "cameras:\n  facade-3:\n    detect:\n      throw:\n        facade:\n          corners: [[860, 40], [420, 40], [1140, 680], [140, 680]]\n          floors: 20\n",
			"calibration.yaml:6: cameras.facade-3.detect.throw.facade.corners[1]: roof-right"},
		{"zone of two points", "cameras:\n  facade-3:\n    detect:\n      zones:\n        - {name: x, points: [[1, 1], [5, 5]]}\n",
			"calibration.yaml:5: cameras.facade-3.detect.zones[0]"},
		{"syntax", "cameras: [\n", "calibration.yaml:1: (syntax)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, data := throwSite(t)
			if err := os.WriteFile(filepath.Join(data, config.OverlayName), []byte(tc.overlay), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path, throw.Check)
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
			// the same through LoadWith, before anything is saved
			os.Remove(filepath.Join(data, config.OverlayName))
			if _, err := config.LoadWith(path, []byte(tc.overlay), throw.Check); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadWith: got %v", err)
			}
		})
	}
}
