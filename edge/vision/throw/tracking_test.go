package throw

import (
	"image"
	"math"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// testFacade: 10 floors of 32 px (10.7 px/m), in a 640×360 frame.
func testDetector() *Detector {
	o := Defaults()
	o.Facade = Facade{TopY: 20, BottomY: 340, LeftX: 100, RightX: 540, Floors: 10, LowestFloor: 1}
	return NewDetector(o, nil)
}

// fallPts is a free fall under g from (x, y0), one point per 40 ms.
func fallPts(d *Detector, x, y0 float64, n, size int) []obs {
	pts := make([]obs, n)
	for i := range pts {
		t := float64(i) * 0.04
		pts[i] = obs{t: time.Duration(i) * 40 * time.Millisecond, x: x, y: y0 + 0.5*d.gpx*t*t, w: size, h: size}
	}
	return pts
}

// Things in view while the background was learnt (snowflakes, a bird on a
// sill) leave ghosts when they go: the background holds them, the wall
// shows through. A ghost must be learnt within about a second, not the ten
// seconds of the slow learning, or a fall passing over it is lost.
func TestGhostsAreLearnt(t *testing.T) {
	d := testDetector()
	defer d.Close()
	wall := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 150, 150, 0), 360, 640, gocv.MatTypeCV8UC3)
	defer wall.Close()
	flakes := wall.Clone()
	defer flakes.Close()
	spots := []image.Point{{200, 100}, {300, 200}, {420, 150}, {480, 300}}
	for _, p := range spots {
		gocv.Circle(&flakes, p, 5, colorRGBA(250), -1)
	}
	fr := gocv.NewMat()
	defer fr.Close()
	nz := gocv.NewMatWithSize(360, 640, gocv.MatTypeCV8UC3)
	defer nz.Close()
	ghostAt := func() int {
		n := 0
		for _, p := range spots {
			r := image.Rect(p.X-6, p.Y-6, p.X+7, p.Y+7).Sub(d.roi.Min)
			reg := d.fg.Region(r)
			n += gocv.CountNonZero(reg)
			reg.Close()
		}
		return n
	}
	for i := range 45 { // 1.8 s at 25 fps; the flakes go at 0.48 s
		src := wall
		if i < 12 {
			src = flakes
		}
		gocv.RandN(&nz, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(2, 2, 2, 0))
		gocv.AddWeighted(src, 1, nz, 1, -128, &fr)
		d.Detect(vision.Frame{Mat: fr, PTS: time.Duration(i) * 40 * time.Millisecond, Seq: i})
		if i == 14 && ghostAt() == 0 {
			t.Fatal("no ghost at frame 14: the test does not show what it should")
		}
	}
	if n := ghostAt(); n != 0 {
		t.Errorf("ghost pixels still foreground 1.3 s after the flakes went: %d", n)
	}
}

// A 13 px object seen partly (behind window frames, over bands of its own
// shade) has centroids off by up to half of what is hidden; weighted by
// how much of it shows, the fall fits as tightly as a clean one.
func TestFitWeighsPartlyHiddenBlobs(t *testing.T) {
	d := testDetector()
	pts := fallPts(d, 300, 40, 32, 13)
	for k, i := range []int{4, 5, 9, 13, 14, 17, 22, 27} {
		// 10 px hidden: a 3 px blob at the top or the bottom of the object
		pts[i].h, pts[i].y = 3, pts[i].y-5*float64(1-2*(k%2))
	}
	v, why := d.fitFall(pts)
	if why != "" {
		t.Fatalf("fitFall: %s", why)
	}
	if g := v.accel / d.gpx; math.Abs(g-1) > 0.05 {
		t.Errorf("accel %.3f g, want 1 ± 0.05", g)
	}
	ts, ys := make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		ts[i], ys[i] = p.t.Seconds(), p.y
	}
	span := pts[len(pts)-1].y - pts[0].y
	if rms := polyfit(ts, ys, nil, 2).rms; rms <= 1.2+0.012*span {
		t.Errorf("unweighted rms %.2f passes too: the test shows nothing", rms)
	}
}

// An object followed for a while keeps its track when a snowflake is
// nearer the prediction, and a flake seen twice (a young track) next to
// the object does not take the object's blob either.
func TestTrackKeepsItsObjectNextToFlakes(t *testing.T) {
	d := testDetector()
	pts := fallPts(d, 300, 40, 9, 16)
	for _, p := range pts[:8] {
		d.track(p.t, []obs{p})
	}
	if len(d.tracks) != 1 || len(d.tracks[0].pts) != 8 {
		t.Fatalf("setup: %d tracks", len(d.tracks))
	}
	obj := pts[8]
	obj.y += 4 // off the prediction by a little: drag, a poor centroid
	flake := obs{t: obj.t, x: obj.x, y: pts[8].y - 3, w: 6, h: 6}
	// a young track (a flake seen once) just below the object
	d.tracks = append(d.tracks, d.newTrack(obs{t: pts[7].t, x: obj.x, y: obj.y + 1, w: 6, h: 6}))
	d.track(obj.t, []obs{flake, obj})
	got := d.tracks[0].pts[len(d.tracks[0].pts)-1]
	if got.w != obj.w || got.y != obj.y {
		t.Errorf("the object's track took %+v, want the object %+v", got, obj)
	}
}

// A fragment that took a few wrong blobs after losing its object (rain
// drops) is still stitched in front of the fall picked up again.
func TestStitchDropsAWrongTail(t *testing.T) {
	d := testDetector()
	all := fallPts(d, 300, 40, 30, 6)
	frag := append([]obs(nil), all[:12]...)
	// two drops taken at the end, 15 px off the path
	frag = append(frag, obs{t: all[12].t, x: 315, y: all[12].y - 20, w: 2, h: 6}, obs{t: all[13].t, x: 316, y: all[13].y - 18, w: 2, h: 6})
	d.lost = []*track{{id: 1, pts: frag, last: frag[len(frag)-1].t}}
	got := d.stitch(all[16:], nil)
	if len(got) != 12+len(all[16:]) {
		t.Fatalf("stitched %d points, want the fragment's 12 good ones + %d", len(got), len(all[16:]))
	}
	if got[0] != all[0] {
		t.Errorf("first point %+v, want %+v", got[0], all[0])
	}
}

// An object that merged with a drop can leave its track to the drops
// while a new track picks it up: the start of the live track is stitched
// in front of the new one (its wrong tail before the new track dropped).
func TestStitchTakesTheStartOfALiveTrack(t *testing.T) {
	d := testDetector()
	all := fallPts(d, 300, 40, 30, 6)
	hijacked := &track{id: 1, pts: append([]obs(nil), all[:12]...)}
	// drops taken from frame 12 on, drifting right while the object goes on down
	for i := 12; i < 24; i++ {
		hijacked.pts = append(hijacked.pts, obs{t: all[i].t, x: 312 + 2*float64(i-12), y: all[11].y + 8*float64(i-11), w: 2, h: 8})
	}
	hijacked.last = hijacked.pts[len(hijacked.pts)-1].t
	self := &track{id: 2, pts: all[14:24]}
	d.tracks = []*track{hijacked, self}
	got := d.stitch(self.pts, self)
	if len(got) != 12+len(self.pts) || got[0] != all[0] {
		t.Fatalf("stitched %d points from %+v, want the live track's 12 good ones + %d from %+v", len(got), got[0], len(self.pts), all[0])
	}
	if again := d.stitch(hijacked.pts[:12], hijacked); len(again) != 12 {
		t.Errorf("a track was stitched to itself or to a later one: %d points", len(again))
	}
}

// A drop's track that took the object on its way starts wrong: the
// fragment is stitched from where its blobs grow to the object's size.
func TestStitchCutsAWrongHead(t *testing.T) {
	d := testDetector()
	all := fallPts(d, 300, 40, 30, 8)
	var frag []obs
	for i := range 6 { // a drop falling at a constant 10 px a frame onto the release point
		frag = append(frag, obs{t: all[0].t - time.Duration(6-i)*40*time.Millisecond, x: 290 + 1.5*float64(i), y: all[0].y - 60 + 10*float64(i), w: 2, h: 8})
	}
	frag = append(frag, all[:12]...)
	d.lost = []*track{{id: 1, pts: frag, last: frag[len(frag)-1].t}}
	got := d.stitch(all[15:], nil)
	if len(got) != 12+len(all[15:]) || got[0] != all[0] {
		t.Fatalf("stitched %d points from %+v, want the fragment's 12 object points + %d from %+v", len(got), got[0], len(all[15:]), all[0])
	}
}

// In snow (a slow crowd) a fall first seen fast is not a hop between
// flakes; in rain it may be.
func TestCrowdLikeSnowAndRain(t *testing.T) {
	d := testDetector()
	pts := fallPts(d, 300, 40, 32, 8)
	for i := range pts {
		pts[i].y += 9 * d.ppm * pts[i].t.Seconds() // first seen at 9 m/s
	}
	v, why := d.fitFall(pts)
	if why != "" {
		t.Fatalf("fitFall: %s", why)
	}
	d.rainW = 8
	d.rainVY = 1.5 * d.ppm // snow
	if d.crowdLike(v) {
		t.Error("snow at 1.5 m/s: a fall first seen at 9 m/s was held")
	}
	d.rainVY = 7 * d.ppm // rain
	if !d.crowdLike(v) {
		t.Error("rain at 7 m/s: a fall first seen at 9 m/s was not held")
	}
}

// A track that stays put after fragments that line up with a fall is no
// fall (a blob on the wall, 1.9 s after an object landed, was reported
// once stitched to fragments of the clouds' shadows).
func TestStitchedTrackMustFallItself(t *testing.T) {
	d := testDetector()
	all := fallPts(d, 300, 40, 32, 6)
	v, why := d.fitFall(all)
	if why != "" {
		t.Fatalf("fitFall: %s", why)
	}
	if !d.fallsAsFitted(all[20:], v) {
		t.Error("the fall's own tail was refused")
	}
	still := make([]obs, 10)
	for i := range still {
		still[i] = all[22]
		still[i].t = all[22].t + time.Duration(i)*40*time.Millisecond
	}
	if d.fallsAsFitted(still, v) {
		t.Error("a track that stays put was taken for the fall's tail")
	}
}
