// Package throw detects objects thrown or dropped from a building facade:
// a background model finds small moving blobs, a constant-acceleration
// Kalman filter tracks them frame to frame, and a track becomes one
// throw.detected event when its vertical motion is a free fall (a parabola
// whose acceleration matches gravity in pixels, from the facade calibration)
// spanning at least min_floors floors. See docs/throw.md.
package throw

import (
	_ "embed"
	"fmt"
	"math"

	"github.com/smartcommunity/warden/edge/config"
)

//go:embed sample.yaml
var sample []byte

// Gravity in m/s².
const Gravity = 9.81

// Facade is the calibration of detect.throw.facade, in facade px: floors
// lie between TopY (roof line) and BottomY (bottom of LowestFloor), evenly
// spaced unless Lines says otherwise. For a frontal view (the rectangle
// keys) facade px are image px. For a perspective view (corners) they are
// the facade seen square on, and Corners are its image corners; the
// detector maps blobs between the two (plane).
type Facade struct {
	TopY, BottomY, LeftX, RightX float64
	Floors, LowestFloor          int
	// Corners: roof-left, roof-right, ground-right, ground-left (image px);
	// nil for the frontal rectangle.
	Corners *[4][2]float64 `json:",omitempty"`
	// Lines are the floor lines' rows, bottom to top (Floors+1, from
	// BottomY to TopY), from floor_lines_y; nil = evenly spaced.
	Lines []float64 `json:",omitempty"`
}

// FloorPx is the mean height of one floor in facade px.
func (f Facade) FloorPx() float64 { return (f.BottomY - f.TopY) / float64(f.Floors) }

// FloorAt is the floor whose band holds facade row y, clamped to the facade.
func (f Facade) FloorAt(y float64) int {
	if len(f.Lines) == f.Floors+1 {
		k := 0
		for k < f.Floors-1 && y < f.Lines[k+1] {
			k++
		}
		return f.LowestFloor + k
	}
	k := int(math.Floor((f.BottomY - y) / f.FloorPx()))
	k = max(0, min(f.Floors-1, k))
	return f.LowestFloor + k
}

// Band is the top and bottom row of floor's band in facade px.
func (f Facade) Band(floor int) (top, bottom float64) {
	k := floor - f.LowestFloor
	if len(f.Lines) == f.Floors+1 && k >= 0 && k < f.Floors {
		return f.Lines[k+1], f.Lines[k]
	}
	fp := f.FloorPx()
	return f.BottomY - float64(k+1)*fp, f.BottomY - float64(k)*fp
}

// ImageCorners are the facade's image corners: roof-left, roof-right,
// ground-right, ground-left (a frontal rectangle's own corners).
func (f Facade) ImageCorners() [4][2]float64 {
	if f.Corners != nil {
		return *f.Corners
	}
	return [4][2]float64{{f.LeftX, f.TopY}, {f.RightX, f.TopY}, {f.RightX, f.BottomY}, {f.LeftX, f.BottomY}}
}

// ImageLines are the measured floor lines as image rows on the facade's
// middle, bottom to top (floor_lines_y, ground to roof); nil when floors
// are evenly spaced.
func (f Facade) ImageLines() []float64 {
	if f.Lines == nil {
		return nil
	}
	p := f.plane()
	out := make([]float64, len(f.Lines))
	for i, y := range f.Lines {
		_, out[i] = p.toImage((f.LeftX+f.RightX)/2, y)
		out[i] = math.Round(out[i]*10) / 10
	}
	return out
}

// plane maps between the image and facade px.
func (f Facade) plane() plane {
	if f.Corners == nil {
		return plane{}
	}
	p, _, err := perspective(*f.Corners, f.Floors)
	if err != nil { // ParseOptions refused such corners
		return plane{}
	}
	return p
}

// Options are the keys of detect.throw.
type Options struct {
	Facade       Facade
	FloorHeightM float64 // floor_height_m, default 3.0
	MinFloors    float64 // min_floors: the fall must span this many floors (default 2)
	// MinSizePx and MaxSizePx bound a moving blob's width and height
	// (min_size_px 2, max_size_px 40); bigger blobs are insects near the
	// lens, lights, people on balconies.
	MinSizePx, MaxSizePx int
	// GTolerance is the accepted range of the fitted acceleration as
	// fractions of g (g_min 0.65, g_max 1.3): drag slows light objects,
	// perspective and lens distortion change the scale across the image.
	GMin, GMax float64
	Snapshot   bool // snapshot, default true
	Clip       bool // clip, default true
}

// Defaults are the options apart from the facade, which is required.
func Defaults() Options {
	return Options{FloorHeightM: 3, MinFloors: 2, MinSizePx: 2, MaxSizePx: 40, GMin: 0.65, GMax: 1.3, Snapshot: true, Clip: true}
}

// PxPerMetre is the vertical scale of the facade.
func (o Options) PxPerMetre() float64 { return o.Facade.FloorPx() / o.FloorHeightM }

// GPx is gravity in px/s².
func (o Options) GPx() float64 { return Gravity * o.PxPerMetre() }

// section is detect.throw as written; Options is what the detector uses.
type section struct {
	Facade       *facadeSection `yaml:"facade"`
	FloorHeightM float64        `yaml:"floor_height_m"`
	MinFloors    float64        `yaml:"min_floors"`
	MinSizePx    int            `yaml:"min_size_px"`
	MaxSizePx    int            `yaml:"max_size_px"`
	GMin         float64        `yaml:"g_min"`
	GMax         float64        `yaml:"g_max"`
	Snapshot     bool           `yaml:"snapshot"`
	Clip         bool           `yaml:"clip"`
}

type facadeSection struct {
	TopY        *float64    `yaml:"top_y"`
	BottomY     *float64    `yaml:"bottom_y"`
	LeftX       *float64    `yaml:"left_x"`
	RightX      *float64    `yaml:"right_x"`
	Corners     [][]float64 `yaml:"corners"`
	Floors      *int        `yaml:"floors"`
	LowestFloor int         `yaml:"lowest_floor"`
	FloorLinesY []float64   `yaml:"floor_lines_y"`
}

// ParseOptions decodes a detect.throw section strictly; prefix names the
// section in errors (e.g. "cameras[1].detect.throw"), which are
// *config.KeyError naming the key.
func ParseOptions(prefix string, sec *config.Section) (Options, error) {
	d := Defaults()
	in := section{FloorHeightM: d.FloorHeightM, MinFloors: d.MinFloors, MinSizePx: d.MinSizePx, MaxSizePx: d.MaxSizePx,
		GMin: d.GMin, GMax: d.GMax, Snapshot: d.Snapshot, Clip: d.Clip}
	if err := sec.Decode(prefix, &in); err != nil {
		return d, err
	}
	o := Options{FloorHeightM: in.FloorHeightM, MinFloors: in.MinFloors, MinSizePx: in.MinSizePx, MaxSizePx: in.MaxSizePx,
		GMin: in.GMin, GMax: in.GMax, Snapshot: in.Snapshot, Clip: in.Clip}
	bad := func(key, format string, a ...any) (Options, error) {
		return o, config.Errorf(prefix, key, format, a...)
	}
	switch {
	case o.FloorHeightM < 2 || o.FloorHeightM > 6:
		return bad("floor_height_m", "%v is outside 2..6", o.FloorHeightM)
	case o.MinFloors < 1 || o.MinFloors > 10:
		return bad("min_floors", "%v is outside 1..10", o.MinFloors)
	case o.MinSizePx < 1 || o.MinSizePx > 400:
		return bad("min_size_px", "%v is not an integer in 1..400", o.MinSizePx)
	case o.MaxSizePx < 1 || o.MaxSizePx > 400:
		return bad("max_size_px", "%v is not an integer in 1..400", o.MaxSizePx)
	case o.GMin < 0.2 || o.GMin > 3:
		return bad("g_min", "%v is outside 0.2..3", o.GMin)
	case o.GMax < 0.2 || o.GMax > 3:
		return bad("g_max", "%v is outside 0.2..3", o.GMax)
	case in.Facade == nil:
		return bad("facade", "required: {corners: [[x,y] roof-left, roof-right, ground-right, ground-left], floors} or {top_y, bottom_y, left_x, right_x, floors}")
	}
	var err error
	if o.Facade, err = parseFacade(prefix+".facade", in.Facade); err != nil {
		return o, err
	}
	if o.MinSizePx > o.MaxSizePx {
		return bad("min_size_px", "%d is above max_size_px %d", o.MinSizePx, o.MaxSizePx)
	}
	if o.GMin >= o.GMax {
		return bad("g_min", "%v is not below g_max %v", o.GMin, o.GMax)
	}
	return o, nil
}

func parseFacade(prefix string, in *facadeSection) (Facade, error) {
	fc := Facade{LowestFloor: 1}
	if in.LowestFloor != 0 {
		fc.LowestFloor = in.LowestFloor
	}
	if in.Floors == nil {
		return fc, config.Errorf(prefix, "floors", "required")
	}
	fc.Floors = *in.Floors
	switch {
	case fc.Floors < 1 || fc.Floors > 200:
		return fc, config.Errorf(prefix, "floors", "%d is outside 1..200", fc.Floors)
	case fc.LowestFloor < -200 || fc.LowestFloor > 20000:
		return fc, config.Errorf(prefix, "lowest_floor", "%d is out of range", fc.LowestFloor)
	}
	var err error
	if len(in.Corners) > 0 {
		err = parseCorners(prefix, in, &fc)
	} else {
		err = parseRectangle(prefix, in, &fc)
	}
	if err != nil {
		return fc, err
	}
	if fc.FloorPx() < 6 {
		return fc, config.Errorf(prefix, "", "%.1f px per floor is too small to measure a fall", fc.FloorPx())
	}
	if len(in.FloorLinesY) > 0 {
		if fc.Lines, err = floorLines(prefix, in.FloorLinesY, fc); err != nil {
			return fc, err
		}
	}
	return fc, nil
}

// parseRectangle reads the frontal calibration: image px are facade px.
func parseRectangle(prefix string, in *facadeSection, fc *Facade) error {
	for _, f := range []struct {
		key string
		v   *float64
		to  *float64
	}{{"top_y", in.TopY, &fc.TopY}, {"bottom_y", in.BottomY, &fc.BottomY}, {"left_x", in.LeftX, &fc.LeftX}, {"right_x", in.RightX, &fc.RightX}} {
		if f.v == nil {
			return config.Errorf(prefix, f.key, "required (or corners, for a camera that looks up at the facade)")
		}
		if *f.v < -200 || *f.v > 20000 {
			return config.Errorf(prefix, f.key, "%v is out of range", *f.v)
		}
		*f.to = *f.v
	}
	switch {
	case fc.BottomY <= fc.TopY:
		return config.Errorf(prefix, "bottom_y", "%v is not below top_y %v", fc.BottomY, fc.TopY)
	case fc.RightX <= fc.LeftX:
		return config.Errorf(prefix, "right_x", "%v is not right of left_x %v", fc.RightX, fc.LeftX)
	}
	return nil
}

// parseCorners reads the perspective calibration: four image corners,
// roof-left, roof-right, ground-right, ground-left, making a convex
// facade with the roof above the ground.
func parseCorners(prefix string, in *facadeSection, fc *Facade) error {
	for _, k := range []struct {
		key string
		set bool
	}{{"top_y", in.TopY != nil}, {"bottom_y", in.BottomY != nil}, {"left_x", in.LeftX != nil}, {"right_x", in.RightX != nil}} {
		if k.set {
			return config.Errorf(prefix, k.key, "give corners or the rectangle (top_y, bottom_y, left_x, right_x), not both")
		}
	}
	if len(in.Corners) != 4 {
		return config.Errorf(prefix, "corners", "%d points: want 4, [x, y] each: roof-left, roof-right, ground-right, ground-left", len(in.Corners))
	}
	var c [4][2]float64
	for i, p := range in.Corners {
		if len(p) != 2 {
			return config.Errorf(prefix, fmt.Sprintf("corners[%d]", i), "%v is not [x, y]", p)
		}
		for _, v := range p {
			if v < -2000 || v > 20000 || math.IsNaN(v) {
				return config.Errorf(prefix, fmt.Sprintf("corners[%d]", i), "%v is out of range", v)
			}
		}
		c[i] = [2]float64{p[0], p[1]}
	}
	rl, rr, gr, gl := c[0], c[1], c[2], c[3]
	if rl[1] == rr[1] && gl[1] == gr[1] && rl[0] == gl[0] && rr[0] == gr[0] && rl[1] < gl[1] && rl[0] < rr[0] {
		// a rectangle: the frontal calibration, exactly as its keys give it
		fc.TopY, fc.BottomY, fc.LeftX, fc.RightX = rl[1], gl[1], rl[0], rr[0]
		return nil
	}
	switch {
	case rr[0] <= rl[0]:
		return config.Errorf(prefix, "corners[1]", "roof-right %v is not right of roof-left %v", rr, rl)
	case gr[0] <= gl[0]:
		return config.Errorf(prefix, "corners[2]", "ground-right %v is not right of ground-left %v", gr, gl)
	case gl[1] <= rl[1]:
		return config.Errorf(prefix, "corners[3]", "ground-left %v is not below roof-left %v", gl, rl)
	case gr[1] <= rr[1]:
		return config.Errorf(prefix, "corners[2]", "ground-right %v is not below roof-right %v", gr, rr)
	}
	for i := range 4 {
		a, b, d := c[i], c[(i+1)%4], c[(i+2)%4]
		if (b[0]-a[0])*(d[1]-b[1])-(b[1]-a[1])*(d[0]-b[0]) <= 0 {
			return config.Errorf(prefix, "corners", "%v is not a convex facade in the order roof-left, roof-right, ground-right, ground-left", c)
		}
	}
	_, rect, err := perspective(c, fc.Floors)
	if err != nil {
		return config.Errorf(prefix, "corners", "%v", err)
	}
	fc.TopY, fc.BottomY, fc.LeftX, fc.RightX = rect.TopY, rect.BottomY, rect.LeftX, rect.RightX
	fc.Corners = &c
	return nil
}

// floorLines turns floor_lines_y (image rows, bottom to top: every line
// from the ground to the roof, or only those between floors) into facade
// rows, read on the facade's middle.
func floorLines(prefix string, ys []float64, fc Facade) ([]float64, error) {
	if len(ys) != fc.Floors+1 && len(ys) != fc.Floors-1 {
		return nil, config.Errorf(prefix, "floor_lines_y", "%d lines for %d floors: give %d (ground to roof) or %d (between floors), bottom to top",
			len(ys), fc.Floors, fc.Floors+1, fc.Floors-1)
	}
	p := fc.plane()
	// the facade's middle line in the image, from the roof to the ground
	tx, ty := p.toImage((fc.LeftX+fc.RightX)/2, fc.TopY)
	bx, by := p.toImage((fc.LeftX+fc.RightX)/2, fc.BottomY)
	var out []float64
	for i, y := range ys {
		if y < ty-1 || y > by+1 {
			return nil, config.Errorf(prefix, fmt.Sprintf("floor_lines_y[%d]", i), "%v is outside the facade (rows %.0f..%.0f)", y, ty, by)
		}
		if i > 0 && y >= ys[i-1] {
			return nil, config.Errorf(prefix, fmt.Sprintf("floor_lines_y[%d]", i), "%v is not above the line before (%v): list them bottom to top", y, ys[i-1])
		}
		x := bx + (tx-bx)*(by-y)/(by-ty)
		_, fy := p.toFacade(x, y)
		out = append(out, fy)
	}
	if len(ys) == fc.Floors-1 {
		out = append(append([]float64{fc.BottomY}, out...), fc.TopY)
	}
	return out, nil
}

// MinFPS is the lowest detect.fps a throw camera may use: a fall of two
// floors lasts about 1.1 s and the fit needs many points.
const MinFPS = 10

// Check is a config.Check: every camera's detect.throw section decodes.
func Check(c *config.Config) []config.Problem {
	var ps []config.Problem
	for i, cam := range c.Cameras {
		if cam.Detect.Throw == nil {
			continue
		}
		prefix := fmt.Sprintf("cameras[%d].detect.throw", i)
		if _, err := ParseOptions(prefix, cam.Detect.Throw); err != nil {
			ps = append(ps, c.Problem(prefix, err))
		}
		if cam.Detect.FPS < MinFPS {
			k := fmt.Sprintf("cameras[%d].detect.fps", i)
			ps = append(ps, config.Problem{Key: k, Line: c.Line(k),
				Msg: fmt.Sprintf("%v is too low for throw detection: use the full camera rate (12.5–25)", cam.Detect.FPS)})
		}
	}
	return ps
}
