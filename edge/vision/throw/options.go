// Package throw detects objects thrown or dropped from a building facade:
// a background model finds small moving blobs, a constant-acceleration
// Kalman filter tracks them frame to frame, and a track becomes one
// throw.detected event when its vertical motion is a free fall (a parabola
// whose acceleration matches gravity in pixels, from the facade calibration)
// spanning at least min_floors floors. See docs/throw.md.
package throw

import (
	"fmt"
	"math"
	"sort"

	"github.com/smartcommunity/warden/edge/config"
)

// Gravity in m/s².
const Gravity = 9.81

// Facade is the pixel calibration of detect.throw.facade: floors are evenly
// spaced between TopY (roof line) and BottomY (bottom of LowestFloor).
type Facade struct {
	TopY, BottomY, LeftX, RightX float64
	Floors, LowestFloor          int
}

// FloorPx is the height of one floor in pixels.
func (f Facade) FloorPx() float64 { return (f.BottomY - f.TopY) / float64(f.Floors) }

// FloorAt is the floor whose band holds image row y, clamped to the facade.
func (f Facade) FloorAt(y float64) int {
	k := int(math.Floor((f.BottomY - y) / f.FloorPx()))
	k = max(0, min(f.Floors-1, k))
	return f.LowestFloor + k
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

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func number(key string, v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case float64:
		return n, nil
	}
	return 0, fmt.Errorf("%s: %v is not a number", key, v)
}

// ParseOptions decodes a detect.throw section strictly; prefix names the
// section in errors (e.g. "cameras[1].detect.throw").
func ParseOptions(prefix string, m map[string]any) (Options, error) {
	o := Defaults()
	haveFacade := false
	for _, k := range sortedKeys(m) {
		v, key := m[k], prefix+"."+k
		var err error
		var f float64
		switch k {
		case "facade":
			fm, ok := v.(map[string]any)
			if !ok {
				return o, fmt.Errorf("%s: must be a mapping {top_y, bottom_y, left_x, right_x, floors, lowest_floor}", key)
			}
			if o.Facade, err = parseFacade(key, fm); err != nil {
				return o, err
			}
			haveFacade = true
		case "floor_height_m":
			if f, err = number(key, v); err == nil && (f < 2 || f > 6) {
				err = fmt.Errorf("%s: %v is outside 2..6", key, f)
			}
			o.FloorHeightM = f
		case "min_floors":
			if f, err = number(key, v); err == nil && (f < 1 || f > 10) {
				err = fmt.Errorf("%s: %v is outside 1..10", key, f)
			}
			o.MinFloors = f
		case "min_size_px", "max_size_px":
			if f, err = number(key, v); err == nil && (f < 1 || f > 400 || f != math.Trunc(f)) {
				err = fmt.Errorf("%s: %v is not an integer in 1..400", key, f)
			}
			if k == "min_size_px" {
				o.MinSizePx = int(f)
			} else {
				o.MaxSizePx = int(f)
			}
		case "g_min", "g_max":
			if f, err = number(key, v); err == nil && (f < 0.2 || f > 3) {
				err = fmt.Errorf("%s: %v is outside 0.2..3", key, f)
			}
			if k == "g_min" {
				o.GMin = f
			} else {
				o.GMax = f
			}
		case "snapshot", "clip":
			b, ok := v.(bool)
			if !ok {
				err = fmt.Errorf("%s: %v is not true or false", key, v)
			}
			if k == "snapshot" {
				o.Snapshot = b
			} else {
				o.Clip = b
			}
		default:
			err = fmt.Errorf("%s: unknown key (facade, floor_height_m, min_floors, min_size_px, max_size_px, g_min, g_max, snapshot, clip)", key)
		}
		if err != nil {
			return o, err
		}
	}
	if !haveFacade {
		return o, fmt.Errorf("%s.facade: required {top_y, bottom_y, left_x, right_x, floors}", prefix)
	}
	if o.MinSizePx > o.MaxSizePx {
		return o, fmt.Errorf("%s.min_size_px: %d is above max_size_px %d", prefix, o.MinSizePx, o.MaxSizePx)
	}
	if o.GMin >= o.GMax {
		return o, fmt.Errorf("%s.g_min: %v is not below g_max %v", prefix, o.GMin, o.GMax)
	}
	return o, nil
}

func parseFacade(prefix string, m map[string]any) (Facade, error) {
	fc := Facade{LowestFloor: 1}
	seen := map[string]bool{}
	for _, k := range sortedKeys(m) {
		key := prefix + "." + k
		f, err := number(key, m[k])
		if err != nil {
			if k != "top_y" && k != "bottom_y" && k != "left_x" && k != "right_x" && k != "floors" && k != "lowest_floor" {
				return fc, fmt.Errorf("%s: unknown key (top_y, bottom_y, left_x, right_x, floors, lowest_floor)", key)
			}
			return fc, err
		}
		switch k {
		case "top_y":
			fc.TopY = f
		case "bottom_y":
			fc.BottomY = f
		case "left_x":
			fc.LeftX = f
		case "right_x":
			fc.RightX = f
		case "floors", "lowest_floor":
			if f != math.Trunc(f) {
				return fc, fmt.Errorf("%s: %v is not an integer", key, f)
			}
			if k == "floors" {
				fc.Floors = int(f)
			} else {
				fc.LowestFloor = int(f)
			}
		default:
			return fc, fmt.Errorf("%s: unknown key (top_y, bottom_y, left_x, right_x, floors, lowest_floor)", key)
		}
		if f < -200 || f > 20000 {
			return fc, fmt.Errorf("%s: %v is out of range", key, f)
		}
		seen[k] = true
	}
	for _, k := range []string{"top_y", "bottom_y", "left_x", "right_x", "floors"} {
		if !seen[k] {
			return fc, fmt.Errorf("%s.%s: required", prefix, k)
		}
	}
	switch {
	case fc.Floors < 1 || fc.Floors > 200:
		return fc, fmt.Errorf("%s.floors: %d is outside 1..200", prefix, fc.Floors)
	case fc.BottomY <= fc.TopY:
		return fc, fmt.Errorf("%s.bottom_y: %v is not below top_y %v", prefix, fc.BottomY, fc.TopY)
	case fc.RightX <= fc.LeftX:
		return fc, fmt.Errorf("%s.right_x: %v is not right of left_x %v", prefix, fc.RightX, fc.LeftX)
	case fc.FloorPx() < 6:
		return fc, fmt.Errorf("%s: %.1f px per floor is too small to measure a fall", prefix, fc.FloorPx())
	}
	return fc, nil
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
			ps = append(ps, config.Problem{Key: prefix, Line: c.Line(prefix), Msg: err.Error()})
		}
		if cam.Detect.FPS < MinFPS {
			k := fmt.Sprintf("cameras[%d].detect.fps", i)
			ps = append(ps, config.Problem{Key: k, Line: c.Line(k),
				Msg: fmt.Sprintf("%v is too low for throw detection: use the full camera rate (12.5–25)", cam.Detect.FPS)})
		}
	}
	return ps
}
