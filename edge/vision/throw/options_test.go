package throw

import (
	"errors"
	"image"
	"image/color"
	"reflect"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
)

func facadeMap() map[string]any {
	return map[string]any{"top_y": 60, "bottom_y": 660, "left_x": 240, "right_x": 1040, "floors": 18, "lowest_floor": 1}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions("cameras[1].detect.throw", config.SectionOf(map[string]any{"facade": facadeMap(), "min_floors": 3, "floor_height_m": 2.8}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Facade.Floors != 18 || o.MinFloors != 3 || o.FloorHeightM != 2.8 || !o.Clip || !o.Snapshot {
		t.Errorf("options %+v", o)
	}
	if got := o.Facade.FloorAt(655); got != 1 {
		t.Errorf("floor at 655 = %d", got)
	}
	if got := o.Facade.FloorAt(61); got != 18 {
		t.Errorf("floor at 61 = %d", got)
	}
	bad := map[string]map[string]any{
		"cameras[1].detect.throw.facade.floorz": {"facade": func() map[string]any { m := facadeMap(); m["floorz"] = 3; return m }()},
		"cameras[1].detect.throw.color":         {"facade": facadeMap(), "color": "red"},
		"cameras[1].detect.throw.facade.floors": {"facade": func() map[string]any { m := facadeMap(); delete(m, "floors"); return m }()},
		"cameras[1].detect.throw.facade":        {"min_floors": 2},
		"cameras[1].detect.throw.min_floors":    {"facade": facadeMap(), "min_floors": "two"},
		"cameras[1].detect.throw.facade.bottom_y": {"facade": func() map[string]any {
			m := facadeMap()
			m["bottom_y"] = 10
			return m
		}()},
	}
	for key, m := range bad {
		_, err := ParseOptions("cameras[1].detect.throw", config.SectionOf(m))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err %v", key, err)
		}
	}
}

func TestFactoryAndCheck(t *testing.T) {
	cam := config.Camera{ID: "f", Detect: config.Detect{FPS: 25}}
	if d, err := New(cam); d != nil || err != nil {
		t.Fatalf("no section: %v %v", d, err)
	}
	cam.Detect.Throw = config.SectionOf(map[string]any{"facade": facadeMap()})
	d, err := New(cam)
	if err != nil || d == nil {
		t.Fatalf("New: %v", err)
	}
	d.Close()
	cam.Detect.FPS = 5
	if _, err := New(cam); err == nil {
		t.Error("fps 5 accepted")
	}
	ps := Check(&config.Config{Cameras: []config.Camera{cam}})
	if len(ps) != 1 || ps[0].Key != "cameras[0].detect.fps" {
		t.Errorf("problems %v", ps)
	}
}

// TestStaticNoise: a still scene with sensor noise, a global gain jump (x1.4,
// compensated without suspending detection) and later a change the gain does
// not explain (a floodlight) never alarms; only the second suspends.
func TestStaticNoise(t *testing.T) {
	o := Defaults()
	o.Facade = Facade{TopY: 20, BottomY: 340, LeftX: 100, RightX: 540, Floors: 10, LowestFloor: 1}
	d := NewDetector(o, nil)
	defer d.Close()
	base := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(120, 130, 140, 0), 360, 640, gocv.MatTypeCV8UC3)
	defer base.Close()
	gocv.Rectangle(&base, image.Rect(200, 100, 300, 200), colorRGBA(40), -1)
	fr, nz := gocv.NewMat(), gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	defer fr.Close()
	defer nz.Close()
	for i := range 150 {
		base.CopyTo(&fr)
		switch {
		case i >= 110: // floodlight on a third of the facade
			fr.ConvertToWithParams(&fr, gocv.MatTypeCV8UC3, 1.5, 0)
			gocv.Rectangle(&fr, image.Rect(100, 20, 540, 130), colorRGBA(250), -1)
		case i >= 60: // exposure jump, then a slow drift
			fr.ConvertToWithParams(&fr, gocv.MatTypeCV8UC3, 1.4+float32(i-60)*0.002, 0)
		}
		gocv.RandN(&nz, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(4, 4, 4, 0))
		gocv.AddWeighted(fr, 1, nz, 1, -128, &fr)
		if dets := d.Detect(vision.Frame{Mat: fr, PTS: time.Duration(i) * 40 * time.Millisecond, Seq: i}); len(dets) > 0 {
			t.Fatalf("frame %d: false alarm %+v", i, dets[0].Data)
		}
		if i == 109 && d.Stats.Suspensions != 0 {
			t.Errorf("stats %+v: the gain jump suspended detection", d.Stats)
		}
	}
	if d.Stats.Suspensions < 1 {
		t.Errorf("stats %+v: the light jump did not suspend", d.Stats)
	}
}

func colorRGBA(g uint8) color.RGBA { return color.RGBA{g, g, g, 0} }

// A mistake inside detect.throw fails the load at its own key and line,
// in block and flow style alike.
func TestCheckNamesKeyAndLine(t *testing.T) {
	for _, c := range []struct {
		yaml, key string
		line      int
	}{
		{"      facade: {top_y: 60, bottom_y: 660, left_x: 240, right_x: 1040, floors: 18}\n      min_floorz: 3\n", "cameras[0].detect.throw.min_floorz", 9},
		{"      facade:\n        top_y: 60\n        bottom_y: 660\n        left_x: 240\n        right_x: 1040\n        floors: many\n", "cameras[0].detect.throw.facade.floors", 13},
		{"      facade: {top_y: 60, bottom_y: 30, left_x: 240, right_x: 1040, floors: 18}\n", "cameras[0].detect.throw.facade.bottom_y", 8},
		{"      facade: {top_y: 60, bottom_y: 660, left_x: 240, right_x: 1040, floors: 18}\n      g_min: 9\n", "cameras[0].detect.throw.g_min", 9},
	} {
		doc := "gateway: {id: gw}\ncameras:\n  - id: facade-3\n    url: rtsp://127.0.0.1/x\n    detect:\n      fps: 25\n      throw:\n" +
			strings.ReplaceAll(c.yaml, "\n      ", "\n        ")
		doc = strings.Replace(doc, "throw:\n      ", "throw:\n        ", 1)
		_, err := config.Parse("t.yaml", []byte(doc), Check)
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 {
			t.Errorf("%s: %v", c.key, err)
			continue
		}
		if p := ce.Problems[0]; p.Key != c.key || p.Line != c.line {
			t.Errorf("problem %v, want %s at line %d\n%s", p, c.key, c.line, doc)
		}
	}
}

// sample.yaml shows the defaults (and an example facade).
func TestSampleIsDefaults(t *testing.T) {
	sec, err := config.ParseSection(sample)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOptions("sample", sec)
	if err != nil {
		t.Fatal(err)
	}
	o.Facade = Facade{}
	if !reflect.DeepEqual(o, Defaults()) {
		t.Errorf("sample.yaml gives %+v, defaults are %+v", o, Defaults())
	}
}
