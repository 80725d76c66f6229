package throwsim

import (
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

func (s *scene) newDistractor(kind string, frames int) (drawer, Distractor) {
	return s.newDistractorAt(kind, frames, -1)
}

// newDistractorAt starts the distractor at frame at (< 0: a random frame).
// Rain, snow and clouds last the whole clip.
func (s *scene) newDistractorAt(kind string, frames, at int) (drawer, Distractor) {
	r, fc, o := s.rng, s.fc, s.o
	start := int(o.FPS * (0.5 + r.Float64()*o.Seconds*0.4))
	if at >= 0 {
		start = at
	}
	end := min(frames-1, start+int(o.FPS*(1.5+r.Float64()*3)))
	gt := Distractor{Kind: kind, StartFrame: start, EndFrame: end}
	W, H := float64(o.W), float64(o.H)
	switch kind {
	case "bird":
		// flies across at 5-15 m/s, bobbing, sometimes climbing
		b := &bird{start: start, end: end, x: fc.LeftX + r.Float64()*(fc.RightX-fc.LeftX), y: fc.TopY + r.Float64()*(fc.BottomY-fc.TopY)*0.7,
			vx: (5 + 10*r.Float64()) * s.ppm, vy: -r.Float64() * 3 * s.ppm, span: 6 + r.Float64()*10, fps: o.FPS, phase: r.Float64() * 6}
		if r.IntN(2) == 0 {
			b.vx = -b.vx
		}
		return b, gt
	case "leaf":
		// slow, nearly constant descent (0.5-2 m/s) with sway
		return &leaf{start: start, end: end, x: fc.LeftX + r.Float64()*(fc.RightX-fc.LeftX), y: fc.TopY + r.Float64()*(fc.BottomY-fc.TopY)*0.3,
			vy: (0.5 + 1.5*r.Float64()) * s.ppm, sway: (0.5 + r.Float64()) * s.ppm, size: 4 + r.Float64()*8, fps: o.FPS,
			col: color.RGBA{uint8(180 + r.IntN(70)), uint8(150 + r.IntN(100)), uint8(60 + r.IntN(80)), 0}}, gt
	case "rain":
		gt.StartFrame, gt.EndFrame = 0, frames-1
		return &rain{n: 60 + r.IntN(140), w: W, h: H, vy: (5 + 4*r.Float64()) * s.ppm * 1.5, vx: (r.Float64() - 0.5) * 2 * s.ppm, fps: o.FPS, seed: r.Uint64()}, gt
	case "snow":
		// 80-300 flakes, 2-5 px, 0.8-2 m/s with sway, the whole clip
		gt.StartFrame, gt.EndFrame = 0, frames-1
		return &snow{n: 80 + r.IntN(220), w: W, h: H, vy: (0.8 + 1.2*r.Float64()) * s.ppm, sway: (0.3 + 0.7*r.Float64()) * s.ppm,
			size: 2 + 3*r.Float64(), fps: o.FPS, seed: r.Uint64()}, gt
	case "lights":
		var wins []image.Rectangle
		fp := fc.FloorPx()
		for range 1 + r.IntN(4) {
			x := fc.LeftX + r.Float64()*(fc.RightX-fc.LeftX-fp)
			y := fc.TopY + r.Float64()*(fc.BottomY-fc.TopY-fp)
			wins = append(wins, image.Rect(int(x), int(y), int(x+fp*0.8), int(y+fp*0.5)))
		}
		return &lights{start: start, wins: wins}, gt
	case "clouds":
		gt.StartFrame, gt.EndFrame = 0, frames-1
		c := &clouds{speed: (20 + 40*r.Float64()) / o.FPS, depth: 25 + r.Float64()*40}
		c.init(o.W, o.H, r.Float64())
		return c, gt
	case "exposure":
		gt.EndFrame = min(frames-1, start+int(o.FPS*0.6))
		g := 1.25 + 0.3*r.Float64()
		if r.IntN(2) == 0 {
			g = 1 / g
		}
		return &exposure{start: start, ramp: max(1, gt.EndFrame-start), gain: g}, gt
	case "shake":
		gt.EndFrame = min(frames-1, start+int(o.FPS*(0.4+0.8*r.Float64())))
		return &shake{start: start, end: gt.EndFrame, amp: 1.5 + 3*r.Float64(), seed: r.Uint64()}, gt
	default: // insect: large, blurred, erratic, near the lens
		return &insect{start: start, end: end, x: r.Float64() * W, y: r.Float64() * H, size: 25 + r.Float64()*50, seed: r.Uint64(), w: W, h: H}, gt
	}
}

type bird struct {
	start, end                     int
	x, y, vx, vy, span, fps, phase float64
}

func (b *bird) draw(fr *gocv.Mat, i int) {
	if i < b.start || i > b.end {
		return
	}
	t := float64(i-b.start) / b.fps
	x := b.x + b.vx*t
	y := b.y + b.vy*t + 4*math.Sin(t*9+b.phase)
	flap := math.Sin(t*40 + b.phase) // wing beat
	h := b.span / 2
	c := color.RGBA{40, 40, 45, 0}
	gocv.Line(fr, image.Pt(int(x-h), int(y-flap*h*0.6)), image.Pt(int(x), int(y)), c, 2)
	gocv.Line(fr, image.Pt(int(x), int(y)), image.Pt(int(x+h), int(y-flap*h*0.6)), c, 2)
}
func (b *bird) close() {}

type leaf struct {
	start, end                int
	x, y, vy, sway, size, fps float64
	col                       color.RGBA
}

func (l *leaf) draw(fr *gocv.Mat, i int) {
	if i < l.start || i > l.end {
		return
	}
	t := float64(i-l.start) / l.fps
	// accelerates briefly, then falls at its terminal speed
	y := l.y + l.vy*(t-0.3*(1-math.Exp(-t/0.3)))
	x := l.x + l.sway*math.Sin(t*2.5)
	ang := 40 * math.Sin(t*4)
	gocv.EllipseWithParams(fr, image.Pt(int(x*16), int(y*16)), image.Pt(int(l.size*8), int(l.size*4)), ang, 0, 360, l.col, -1, gocv.LineAA, 4)
}
func (l *leaf) close() {}

type rain struct {
	n                 int
	w, h, vy, vx, fps float64
	seed              uint64
	drops             [][3]float64 // x, y, length
	init_             bool
}

func (r *rain) draw(fr *gocv.Mat, i int) {
	rng := newLCG(r.seed + uint64(i))
	if !r.init_ {
		for range r.n {
			r.drops = append(r.drops, [3]float64{rng.f() * r.w, rng.f() * r.h, 0.6 + 0.8*rng.f()})
		}
		r.init_ = true
	}
	dx, dy := r.vx/r.fps, r.vy/r.fps
	for k := range r.drops {
		d := &r.drops[k]
		s := d[2] // nearer drops are faster and longer
		gocv.Line(fr, image.Pt(int(d[0]), int(d[1])), image.Pt(int(d[0]+dx*s*0.6), int(d[1]+dy*s*0.6)), color.RGBA{200, 200, 210, 0}, 1)
		d[0] += dx * s
		d[1] += dy * s
		if d[1] > r.h {
			d[0], d[1] = rng.f()*r.w, -dy*s*rng.f()
		}
	}
}
func (r *rain) close() {}

type snow struct {
	n                         int
	w, h, vy, sway, size, fps float64
	seed                      uint64
	flakes                    [][4]float64 // x, y, speed factor, phase
}

func (s *snow) draw(fr *gocv.Mat, i int) {
	rng := newLCG(s.seed + uint64(i))
	if s.flakes == nil {
		for range s.n {
			s.flakes = append(s.flakes, [4]float64{rng.f() * s.w, rng.f() * s.h, 0.6 + 0.8*rng.f(), rng.f() * 6})
		}
	}
	t := float64(i) / s.fps
	for k := range s.flakes {
		f := &s.flakes[k]
		x := f[0] + s.sway*math.Sin(t*2+f[3])/2
		gocv.CircleWithParams(fr, image.Pt(int(x*16), int(f[1]*16)), int(s.size*f[2]*8), color.RGBA{235, 235, 240, 0}, -1, gocv.LineAA, 4)
		f[1] += s.vy * f[2] / s.fps
		if f[1] > s.h {
			f[0], f[1] = rng.f()*s.w, -s.size
		}
	}
}
func (s *snow) close() {}

type lights struct {
	start int
	wins  []image.Rectangle
}

func (l *lights) draw(fr *gocv.Mat, i int) {
	if i < l.start {
		return
	}
	for _, w := range l.wins {
		gocv.Rectangle(fr, w, color.RGBA{255, 230, 150, 0}, -1)
	}
}
func (l *lights) close() {}

type clouds struct {
	shadow       gocv.Mat
	speed, depth float64
	w, h         int
	off          float64
}

func (c *clouds) init(w, h int, off float64) {
	c.w, c.h = w, h
	c.off = off * float64(w)
	c.shadow = gocv.NewMatWithSize(h, 3*w, gocv.MatTypeCV8UC3)
	c.shadow.SetTo(gocv.NewScalar(0, 0, 0, 0))
	for k := range 6 {
		cx := int(float64(k) * float64(w) * 0.5)
		gocv.Ellipse(&c.shadow, image.Pt(cx, h/2+(k%3-1)*h/4), image.Pt(w/4, h/3), 0, 0, 360, color.RGBA{uint8(c.depth), uint8(c.depth), uint8(c.depth), 0}, -1)
	}
	k := (h/4)*2 + 1
	gocv.GaussianBlur(c.shadow, &c.shadow, image.Pt(k, k), 0, 0, gocv.BorderDefault)
}

func (c *clouds) draw(fr *gocv.Mat, i int) {
	x := int(c.off+float64(i)*c.speed) % (2 * c.w)
	reg := c.shadow.Region(image.Rect(x, 0, x+c.w, c.h))
	gocv.Subtract(*fr, reg, fr)
	reg.Close()
}
func (c *clouds) close() { c.shadow.Close() }

type exposure struct {
	start, ramp int
	gain        float64
}

func (e *exposure) draw(fr *gocv.Mat, i int) {
	if i < e.start {
		return
	}
	g := e.gain
	if j := i - e.start; j < e.ramp {
		g = 1 + (e.gain-1)*float64(j)/float64(e.ramp)
	}
	fr.ConvertToWithParams(fr, gocv.MatTypeCV8UC3, float32(g), 0)
}
func (e *exposure) close() {}

type shake struct {
	start, end int
	amp        float64
	seed       uint64
}

func (s *shake) draw(*gocv.Mat, int) {}

// apply moves the whole frame, after everything else is drawn.
func (s *shake) apply(fr *gocv.Mat, i int) {
	if i < s.start || i > s.end {
		return
	}
	rng := newLCG(s.seed + uint64(i))
	dx, dy := (rng.f()*2-1)*s.amp, (rng.f()*2-1)*s.amp
	vision.Shift(*fr, fr, dx, dy)
}
func (s *shake) close() {}

type insect struct {
	start, end       int
	x, y, size, w, h float64
	seed             uint64
}

func (in *insect) draw(fr *gocv.Mat, i int) {
	if i < in.start || i > in.end {
		return
	}
	rng := newLCG(in.seed + uint64(i))
	in.x += (rng.f()*2 - 1) * in.size * 0.6
	in.y += (rng.f()*2 - 1) * in.size * 0.6
	in.x, in.y = max(0, min(in.w-1, in.x)), max(0, min(in.h-1, in.y))
	rect := image.Rect(int(in.x-in.size), int(in.y-in.size), int(in.x+in.size), int(in.y+in.size)).Intersect(image.Rect(0, 0, fr.Cols(), fr.Rows()))
	if rect.Dx() < 4 || rect.Dy() < 4 {
		return
	}
	reg := fr.Region(rect)
	defer reg.Close()
	c := image.Pt(int(in.x)-rect.Min.X, int(in.y)-rect.Min.Y)
	gocv.Ellipse(&reg, c, image.Pt(int(in.size/2), int(in.size/3)), rng.f()*180, 0, 360, color.RGBA{30, 30, 30, 0}, -1)
	k := int(in.size/3)*2 + 1
	gocv.GaussianBlur(reg, &reg, image.Pt(k, k), 0, 0, gocv.BorderDefault)
}
func (in *insect) close() {}

// lcg is a tiny deterministic generator for per-frame randomness.
type lcg struct{ s uint64 }

func newLCG(seed uint64) *lcg { return &lcg{seed*6364136223846793005 + 1442695040888963407} }
func (l *lcg) f() float64 {
	l.s = l.s*6364136223846793005 + 1442695040888963407
	return float64(l.s>>11) / (1 << 53)
}
