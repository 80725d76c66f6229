package throw

import (
	"encoding/binary"
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// stabiliser follows a shaking camera: the frame's shift against the
// background by phase correlation, and the difference against the
// background moved the same way.
type stabiliser struct {
	bgS, bgLo, bgHi, diff2, hann, pcA, pcB, noWin gocv.Mat
	shift                                         [2]float64 // this frame's shake offset from the background, px
	shakeUntil                                    time.Duration
	rest                                          [2]float64 // phase correlation's reading at rest (see measureRest)
	restAt                                        time.Duration
	haveRest                                      bool
}

// globalChange tells a shaken frame (followed: fg is then the
// stabilised difference) from a global change (lights, an exposure jump:
// detection is suspended while the scene is learnt again).
func (d *Detector) globalChange(pts time.Duration, m measure) (shaken, suspended bool) {
	suspended = pts < d.suspendUntil
	// a gain change alone is compensated (auto-exposure ramps while a
	// fall goes on); only a change the gain does not explain suspends
	// steady weather (snow) changes a steady share of the view; a sudden
	// rise is a global change
	fracAvg := d.fracAvg
	d.shift = [2]float64{}
	global := (m.frac > globalFrac && m.frac > 2.5*fracAvg) || m.jump
	if !suspended && (global || pts < d.shakeUntil) && math.Abs(m.ratio-1) <= maxGainStep {
		// the whole view moved (camera shake): follow it instead of going
		// blind; while it shakes, small moves that do not trip the global
		// test are followed too, so they are not learnt into the background
		shaken = d.stabilise(pts, m.ratio)
	}
	if !shaken {
		d.fracAvg = 0.9*d.fracAvg + 0.1*m.frac
	}
	if !shaken && global {
		// at the usual noise level (a big change raised this frame's
		// threshold): is the change spread over the view, or is it an
		// insect or a hand at the lens, whose blob is too big to track?
		gocv.Threshold(d.d8, &d.fg, float32(d.usualThreshold()), 255, gocv.ThresholdBinary)
		gocv.BitwiseAnd(d.fg, d.mask, &d.fg)
		global = d.spread() >= globalSpread
	}
	if !shaken && (global || math.Abs(m.ratio-1) > maxGainStep) {
		// a global change (lights, exposure jump, shake): re-learn, no alarms
		if !suspended {
			d.Stats.Suspensions++
		}
		d.suspend(pts)
		suspended = true
	}
	return shaken, suspended
}

// stabilise measures how far the view moved from the background (phase
// correlation) and, when that explains the change, replaces d.fg by the
// difference against the background moved the same way. A pixel must
// differ from every background pixel in its 3×3 neighbourhood, so the
// sub-pixel resampling error at edges (windows, slabs) does not count.
// Blob positions are reported in background coordinates.
func (d *Detector) stabilise(pts time.Duration, ratio float64) bool {
	dx, dy, resp := d.phaseShift()
	dx, dy = dx-d.rest[0], dy-d.rest[1]
	if resp < shakeResponse || math.Hypot(dx, dy) < 0.25 || math.Abs(dx) > maxShakePx || math.Abs(dy) > maxShakePx {
		return false
	}
	vision.Shift(d.bg, &d.bgS, dx, dy)
	d.bgS.MultiplyFloat(float32(ratio))
	gocv.Erode(d.bgS, &d.bgLo, d.kernel)
	gocv.Dilate(d.bgS, &d.bgHi, d.kernel)
	// brighter than the brightest neighbour, or darker than the darkest
	gocv.Subtract(d.grayF, d.bgHi, &d.diff)
	gocv.Subtract(d.bgLo, d.grayF, &d.diff2)
	gocv.Max(d.diff, d.diff2, &d.diff)
	gocv.Threshold(d.diff, &d.diff2, float32(d.usualThreshold()), 255, gocv.ThresholdBinary)
	d.diff2.ConvertTo(&d.d8, gocv.MatTypeCV8U)
	gocv.BitwiseAnd(d.d8, d.mask, &d.fg)
	// the strip the shift uncovered has no background
	clearBorder(&d.fg, shiftBorder(dx, dy))
	if frac := float64(gocv.CountNonZero(d.fg)) / float64(d.watched); frac > globalFrac && d.spread() >= globalSpread {
		return false // more than a shift: lights switched on, clouds
	}
	d.shift = [2]float64{dx, dy}
	d.Stats.ShakeFrames++
	d.shakeUntil = pts + shakeHold
	return true
}

// measureRest takes phase correlation's reading on a still frame. On
// some facades (rows of windows at a fractional pitch) it reads half a
// pixel with the camera at rest; shifts are measured from that reading,
// or a shaken camera back at rest would look shaken for ever.
func (d *Detector) measureRest(pts time.Duration) {
	if d.haveRest && pts-d.restAt < restEvery {
		return
	}
	dx, dy, resp := d.phaseShift()
	d.restAt = pts
	if resp < shakeResponse || math.Abs(dx) > 1 || math.Abs(dy) > 1 {
		return
	}
	d.rest = [2]float64{dx, dy}
	d.haveRest = true
}

// phaseShift is the frame's shift against the background by phase
// correlation. The window keeps the ROI's cut edges out of the estimate
// (0.4 px off without it, 0.01 px with it on a textured scene). It is
// applied here: OpenCV 4.6 applies it in place, to the inputs
// themselves, when their size is already a fast DFT size (640×512,
// not 644×577), which windowed the background and the frame.
func (d *Detector) phaseShift() (dx, dy, resp float64) {
	if d.hann.Empty() {
		d.hann = hannWindow(d.bg.Cols(), d.bg.Rows())
	}
	gocv.Multiply(d.bg, d.hann, &d.pcA)
	gocv.Multiply(d.grayF, d.hann, &d.pcB)
	sh, resp := gocv.PhaseCorrelate(d.pcA, d.pcB, d.noWin)
	return float64(sh.X), float64(sh.Y), resp
}

// shiftBorder is the width of the strip a shift of (dx, dy) uncovers.
func shiftBorder(dx, dy float64) int { return int(math.Ceil(max(math.Abs(dx), math.Abs(dy)))) + 1 }

// clearBorder zeroes a strip b pixels wide along the edges of m.
func clearBorder(m *gocv.Mat, b int) {
	w, h := m.Cols(), m.Rows()
	for _, r := range []image.Rectangle{image.Rect(0, 0, w, b), image.Rect(0, h-b, w, h), image.Rect(0, 0, b, h), image.Rect(w-b, 0, w, h)} {
		reg := m.Region(r.Intersect(image.Rect(0, 0, w, h)))
		reg.SetTo(gocv.NewScalar(0, 0, 0, 0))
		reg.Close()
	}
}

// hannWindow is cv::createHanningWindow, which gocv 0.32 lacks.
func hannWindow(w, h int) gocv.Mat {
	buf := make([]byte, 4*w*h)
	for y := range h {
		wy := 0.5 - 0.5*math.Cos(2*math.Pi*float64(y)/float64(max(1, h-1)))
		for x := range w {
			wx := 0.5 - 0.5*math.Cos(2*math.Pi*float64(x)/float64(max(1, w-1)))
			binary.NativeEndian.PutUint32(buf[4*(y*w+x):], math.Float32bits(float32(wx*wy)))
		}
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV32F, buf)
	if err != nil {
		return gocv.NewMat()
	}
	defer m.Close()
	return m.Clone() // NewMatFromBytes shares buf
}
