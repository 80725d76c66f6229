package motion

import (
	"image"
	"image/color"
	"math"
	"slices"
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

// A damaged frame (decoder errors) is no motion, and no picture to compare
// the next one with: garbage between still frames raises nothing, and a
// real movement after it is seen once two clean frames show it.
func TestDamagedFramesAreNoMotion(t *testing.T) {
	d, err := New(config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	noise := gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	defer noise.Close()
	gocv.RandU(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
	still := frame(-1)
	defer still.Close()
	i := 0
	feed := func(m gocv.Mat, damaged bool) int {
		i++
		return len(d.Detect(vision.Frame{Mat: m, PTS: time.Duration(i) * 200 * time.Millisecond, Seq: i, Damaged: damaged}))
	}
	n := feed(still, false)
	for range 5 { // garbage, flagged: each frame unlike the last
		gocv.RandU(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
		n += feed(noise, true)
	}
	n += feed(still, false)
	n += feed(still, false)
	if n != 0 {
		t.Fatalf("%d motion events from damaged frames between still ones", n)
	}
	for x := 20; x < 300; x += 40 {
		m := frame(x)
		n += feed(m, false)
		m.Close()
	}
	if n != 1 {
		t.Fatalf("%d motion events from a clean movement after the damage, want 1", n)
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

// A camera whose detectors are all motion hands it the decoded luma plane
// instead of BGR (vision.LumaOnly). On the same pictures both must find the
// same episodes: a textured, noisy scene whose moving object differs from
// the background by about the threshold, so a luma range left unstretched
// (16–235 instead of 0–255) would miss frames that BGR catches.
func TestLumaFramesMatchBGR(t *testing.T) {
	opts := map[string]any{"cooldown_seconds": 1, "min_frames": 1}
	open := func() vision.Detector {
		d, err := New(config.Camera{ID: "c", Detect: config.Detect{Motion: config.SectionOf(opts)}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	bgrDet, lumaDet := open(), open()
	defer bgrDet.Close()
	defer lumaDet.Close()
	if !vision.AllLumaOnly([]vision.Detector{lumaDet}) {
		t.Fatal("motion does not say it reads luma only")
	}

	bg := gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	defer bg.Close()
	gocv.RandU(&bg, gocv.NewScalar(60, 70, 80, 0), gocv.NewScalar(120, 130, 140, 0))
	gocv.GaussianBlur(bg, &bg, image.Pt(9, 9), 0, 0, gocv.BorderDefault)
	noise := gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	defer noise.Close()

	var bgrHits, lumaHits []int
	var bgrAreas, lumaAreas []float64
	for i := range 160 {
		m := bg.Clone()
		gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(3, 3, 3, 0))
		gocv.Add(m, noise, &m)
		// the object's contrast sweeps across the threshold, episode by episode
		if i%20 < 12 {
			lift := 18 + float64(i/20)*2 // 18, 20 … 32 grey levels above the scene
			x := 20 + (i%20)*40
			roi := m.Region(image.Rect(x, 120, x+70, 220))
			gocv.AddWeighted(roi, 1, roi, 0, lift, &roi)
			roi.Close()
		}
		i420 := gocv.NewMat()
		gocv.CvtColor(m, &i420, gocv.ColorBGRToYUVI420)
		y := i420.RowRange(0, 360)
		pts := time.Duration(i) * 200 * time.Millisecond
		if ds := bgrDet.Detect(vision.Frame{Mat: m, PTS: pts, Seq: i}); len(ds) > 0 {
			bgrHits, bgrAreas = append(bgrHits, i), append(bgrAreas, ds[0].Data["area"].(float64))
		}
		if ds := lumaDet.Detect(vision.Frame{Mat: y, PTS: pts, Seq: i}); len(ds) > 0 {
			lumaHits, lumaAreas = append(lumaHits, i), append(lumaAreas, ds[0].Data["area"].(float64))
		}
		y.Close()
		i420.Close()
		m.Close()
	}
	if len(bgrHits) == 0 {
		t.Fatal("the BGR frames gave no episode; the scene is wrong")
	}
	if !slices.Equal(bgrHits, lumaHits) {
		t.Fatalf("episodes start at frames %v on BGR but %v on luma", bgrHits, lumaHits)
	}
	for i := range bgrAreas {
		if d := math.Abs(bgrAreas[i] - lumaAreas[i]); d > 0.1*bgrAreas[i] {
			t.Errorf("episode %d: area %.4f on BGR, %.4f on luma", i, bgrAreas[i], lumaAreas[i])
		}
	}
	t.Logf("episodes at %v, areas BGR %v luma %v", bgrHits, bgrAreas, lumaAreas)
}

// shrink's halving steps give the one-step area average to within one
// grey level, for exact, odd and non-integer factors.
func TestShrinkMatchesAreaResize(t *testing.T) {
	for _, c := range []struct{ src, dst image.Point }{
		{image.Pt(1280, 720), image.Pt(320, 180)},
		{image.Pt(1920, 1080), image.Pt(320, 180)},
		{image.Pt(641, 361), image.Pt(320, 180)},
		{image.Pt(320, 180), image.Pt(320, 180)},
	} {
		src := gocv.NewMatWithSize(c.src.Y, c.src.X, gocv.MatTypeCV8UC1)
		gocv.RandU(&src, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(256, 0, 0, 0))
		want, got, diff := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
		gocv.Resize(src, &want, c.dst, 0, 0, gocv.InterpolationArea)
		shrink(src, &got, c.dst)
		if got.Cols() != c.dst.X || got.Rows() != c.dst.Y {
			t.Fatalf("%v → %v: got %dx%d", c.src, c.dst, got.Cols(), got.Rows())
		}
		gocv.AbsDiff(want, got, &diff)
		if _, maxv, _, _ := gocv.MinMaxLoc(diff); maxv > 1 {
			t.Errorf("%v → %v: differs from one area resize by up to %v", c.src, c.dst, maxv)
		}
		if got.Ptr() == src.Ptr() {
			t.Errorf("%v → %v: result shares the source's pixels", c.src, c.dst)
		}
		for _, m := range []*gocv.Mat{&src, &want, &got, &diff} {
			m.Close()
		}
	}
}

func BenchmarkShrink720p(b *testing.B) {
	src := gocv.NewMatWithSize(720, 1280, gocv.MatTypeCV8UC1)
	defer src.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	for b.Loop() {
		shrink(src, &dst, image.Pt(320, 180))
	}
}
