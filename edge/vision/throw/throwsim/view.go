package throwsim

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"gocv.io/x/gocv"
)

// view is a camera on the ground looking up at the frontal scene: the
// homography that takes the frontal facade onto a trapezoid whose roof is
// 0.45–0.65 of the ground edge's width. The vertical scale shrinks about
// as the square of that, so the top floor is 0.2–0.4 of the lowest's
// height, as seen from the foot of a 14–22-floor building.
type view struct {
	m       gocv.Mat // frontal → image, CV_64F 3×3
	h       [9]float64
	tmp     gocv.Mat
	w, hgt  int
	groundY float64 // image row of the ground edge
}

func (v *view) close() { v.m.Close(); v.tmp.Close() }

// at maps a frontal point into the image.
func (v *view) at(x, y float64) (float64, float64) {
	w := v.h[6]*x + v.h[7]*y + v.h[8]
	return (v.h[0]*x + v.h[1]*y + v.h[2]) / w, (v.h[3]*x + v.h[4]*y + v.h[5]) / w
}

// scale is the image size of one frontal px at (x, y): the geometric mean
// of its width and height.
func (v *view) scale(x, y float64) float64 {
	x0, y0 := v.at(x-0.5, y)
	x1, y1 := v.at(x+0.5, y)
	x2, y2 := v.at(x, y-0.5)
	x3, y3 := v.at(x, y+0.5)
	return math.Sqrt(math.Hypot(x1-x0, y1-y0) * math.Hypot(x3-x2, y3-y2))
}

func (v *view) warp(fr *gocv.Mat) {
	gocv.WarpPerspectiveWithParams(*fr, &v.tmp, v.m, image.Pt(v.w, v.hgt), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	v.tmp.CopyTo(fr)
}

// lookUp sets the camera, and the truth's corners, release points and
// sizes in its image.
func (s *scene) lookUp() {
	r, o, fc := s.rng, s.o, s.fc
	W, H := float64(o.W), float64(o.H)
	gy := math.Round(H * (0.9 + 0.05*r.Float64()))
	ry := math.Round(H * (0.03 + 0.05*r.Float64()))
	gl := math.Round(W * (0.08 + 0.1*r.Float64()))
	gr := math.Round(W * (0.82 + 0.1*r.Float64()))
	ratio := 0.45 + 0.2*r.Float64()
	mid := (gl+gr)/2 + W*(r.Float64()-0.5)*0.1 // the camera a little to one side
	half := (gr - gl) / 2 * ratio
	quad := [4][2]float64{{math.Round(mid - half), ry}, {math.Round(mid + half), ry}, {gr, gy}, {gl, gy}}
	srcF := []gocv.Point2f{{X: float32(fc.LeftX), Y: float32(fc.TopY)}, {X: float32(fc.RightX), Y: float32(fc.TopY)},
		{X: float32(fc.RightX), Y: float32(fc.BottomY)}, {X: float32(fc.LeftX), Y: float32(fc.BottomY)}}
	var dstF []gocv.Point2f
	for _, q := range quad {
		dstF = append(dstF, gocv.Point2f{X: float32(q[0]), Y: float32(q[1])})
	}
	sv, dv := gocv.NewPoint2fVectorFromPoints(srcF), gocv.NewPoint2fVectorFromPoints(dstF)
	defer sv.Close()
	defer dv.Close()
	v := &view{m: gocv.GetPerspectiveTransform2f(sv, dv), tmp: gocv.NewMat(), w: o.W, hgt: o.H, groundY: gy}
	for i := range 9 {
		v.h[i] = v.m.GetDoubleAt(i/3, i%3)
	}
	s.view = v
	s.truth.Corners, s.truth.Perspective = &quad, true
	for _, t := range s.throws {
		x, y := t.gt.ReleaseX, t.gt.ReleaseY
		t.gt.SizePx = max(1, int(math.Round(float64(t.gt.SizePx)*v.scale(x, y))))
		x, y = v.at(x, y)
		t.gt.ReleaseX, t.gt.ReleaseY = round2(x), round2(y)
	}
}

// inCamera: distractors between the camera and the facade, drawn in the
// image after the warp.
func inCamera(d drawer) bool {
	switch d.(type) {
	case *rain, *snow, *insect, *exposure, *headlights:
		return true
	}
	return false
}

// nightDrawers adds what a night brings: a window switching on and one or
// two cars' headlights sweeping the ground. They draw from their own
// random source, so the rest of the clip is what the seed gives by day.
func (s *scene) nightDrawers(seed uint64, frames int) {
	r := rand.New(rand.NewPCG(seed^0x5eed0f419b7, 11))
	fc, o := s.fc, s.o
	fp := fc.FloorPx()
	x := fc.LeftX + r.Float64()*(fc.RightX-fc.LeftX-fp)
	y := fc.TopY + r.Float64()*(fc.BottomY-fc.TopY-fp)
	start := int(o.FPS * (0.5 + r.Float64()*o.Seconds*0.8))
	s.dists = append(s.dists, &lights{start: start, wins: []image.Rectangle{image.Rect(int(x), int(y), int(x+fp*0.8), int(y+fp*0.5))}})
	s.truth.Distractors = append(s.truth.Distractors, Distractor{Kind: "lights", StartFrame: start, EndFrame: frames - 1})
	groundY := fc.BottomY
	if s.view != nil {
		groundY = s.view.groundY
	}
	for range 1 + r.IntN(2) {
		h := newHeadlights(o.W, o.H, groundY, r, o.FPS, frames)
		s.dists = append(s.dists, h)
		s.truth.Distractors = append(s.truth.Distractors, Distractor{Kind: "headlights", StartFrame: h.start, EndFrame: h.end})
	}
}

// headlights are a car's beams crossing the image along the ground, with
// the glow they throw on the lowest floors.
type headlights struct {
	patch      gocv.Mat
	start, end int
	x0, vx, y  float64
}

func newHeadlights(w, h int, groundY float64, r *rand.Rand, fps float64, frames int) *headlights {
	pw, ph := w/3, h/4
	patch := gocv.NewMatWithSize(ph, pw, gocv.MatTypeCV8UC3)
	patch.SetTo(gocv.NewScalar(0, 0, 0, 0))
	gocv.Ellipse(&patch, image.Pt(pw/2, ph*3/4), image.Pt(pw/3, ph/8), 0, 0, 360, color.RGBA{140, 140, 140, 0}, -1)
	gocv.Ellipse(&patch, image.Pt(pw/2, ph/3), image.Pt(pw*2/5, ph/4), 0, 0, 360, color.RGBA{45, 45, 45, 0}, -1)
	k := (min(pw, ph)/6)*2 + 1
	gocv.GaussianBlur(patch, &patch, image.Pt(k, k), 0, 0, gocv.BorderDefault)
	dur := 2 + 2*r.Float64() // s to cross
	start := int(fps * r.Float64() * (float64(frames)/fps - 1))
	hl := &headlights{patch: patch, start: start, end: min(frames-1, start+int(dur*fps)),
		x0: -float64(pw), vx: (float64(w) + float64(pw)) / (dur * fps), y: groundY - float64(ph)*0.6}
	if r.IntN(2) == 0 { // from the right
		hl.x0, hl.vx = float64(w), -hl.vx
	}
	return hl
}

func (hl *headlights) draw(fr *gocv.Mat, i int) {
	if i < hl.start || i > hl.end {
		return
	}
	x := int(hl.x0 + hl.vx*float64(i-hl.start))
	y := int(hl.y)
	dst := image.Rect(x, y, x+hl.patch.Cols(), y+hl.patch.Rows()).Intersect(image.Rect(0, 0, fr.Cols(), fr.Rows()))
	if dst.Empty() {
		return
	}
	src := dst.Sub(image.Pt(x, y))
	a, b := fr.Region(dst), hl.patch.Region(src)
	gocv.Add(a, b, &a)
	a.Close()
	b.Close()
}

func (hl *headlights) close() { hl.patch.Close() }
