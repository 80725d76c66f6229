package motion

import (
	"image"
	"image/color"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
)

// frame draws a white square at x on black.
func frame(x int) gocv.Mat {
	m := gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	m.SetTo(gocv.NewScalar(0, 0, 0, 0))
	if x >= 0 {
		gocv.Rectangle(&m, image.Rect(x, 100, x+60, 160), color.RGBA{255, 255, 255, 0}, -1)
	}
	return m
}

func run(t *testing.T, d vision.Detector, xs []int) (n int, last []vision.Detection) {
	t.Helper()
	for i, x := range xs {
		m := frame(x)
		ds := d.Detect(vision.Frame{Mat: m, PTS: time.Duration(i) * 200 * time.Millisecond, Seq: i})
		m.Close()
		n += len(ds)
		if len(ds) > 0 {
			last = ds
		}
	}
	return n, last
}

func TestOffWithoutSection(t *testing.T) {
	d, err := New(config.Camera{ID: "c"})
	if d != nil || err != nil {
		t.Fatalf("got %v, %v; want off", d, err)
	}
}

func TestOneEventPerEpisode(t *testing.T) {
	d, err := New(config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{"cooldown_seconds": 1})}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// still, then moving for 10 frames, still for 2 s, moving again
	xs := []int{-1, -1, -1}
	for i := 0; i < 10; i++ {
		xs = append(xs, 20+i*40)
	}
	for i := 0; i < 10; i++ {
		xs = append(xs, -1)
	}
	for i := 0; i < 5; i++ {
		xs = append(xs, 20+i*40)
	}
	n, last := run(t, d, xs)
	if n != 2 {
		t.Fatalf("%d events, want 2 (one per episode)", n)
	}
	det := last[0]
	if det.Type != "motion.detected" || det.BBox.Empty() || !det.Snapshot {
		t.Fatalf("detection %+v", det)
	}
}

func TestMaskExcludesMotion(t *testing.T) {
	cam := config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{}),
		Regions: []config.Region{{Name: "road", Mask: true, Points: [][2]int{{0, 0}, {640, 0}, {640, 200}, {0, 200}}}}}}
	d, err := New(cam)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	xs := []int{-1}
	for i := 0; i < 10; i++ {
		xs = append(xs, 20+i*40)
	}
	if n, _ := run(t, d, xs); n != 0 {
		t.Fatalf("%d events inside a mask, want 0", n)
	}
}

func TestZoneNamed(t *testing.T) {
	cam := config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{"min_frames": 1}),
		Regions: []config.Region{{Name: "door", Points: [][2]int{{0, 0}, {640, 0}, {640, 200}, {0, 200}}}}}}
	d, err := New(cam)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n, last := run(t, d, []int{-1, 100, 200})
	if n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	if zs, _ := last[0].Data["zones"].([]string); len(zs) != 1 || zs[0] != "door" {
		t.Fatalf("zones %v", last[0].Data["zones"])
	}
}

func TestBadOptions(t *testing.T) {
	for _, m := range []map[string]any{{"treshold": 3}, {"threshold": "x"}, {"min_area": 2.0}, {"clip": 1}} {
		if _, err := New(config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(m)}}); err == nil {
			t.Errorf("%v accepted", m)
		}
	}
	if _, err := New(config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{}), Regions: []config.Region{{Name: "z", Points: [][2]int{{0, 0}}}}}}); err == nil {
		t.Error("1-point zone accepted")
	}
}

// sample.yaml shows the defaults.
func TestSampleIsDefaults(t *testing.T) {
	sec, err := config.ParseSection(sample)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := ParseOptions("sample", sec); err != nil || o != Defaults() {
		t.Errorf("sample.yaml gives %+v (%v), defaults are %+v", o, err, Defaults())
	}
}
