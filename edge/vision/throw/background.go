package throw

import (
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// background is the learnt scene and this frame's difference from it:
// the grey frame, the running background, the foreground mask and the
// noise level that scales its threshold.
type background struct {
	mask                                 gocv.Mat // 255 where motion counts (ROI size)
	watched                              int
	kernel                               gocv.Mat
	gray, grayF, bg, diff, d8, fg, notFG gocv.Mat
	fgAge, still                         gocv.Mat // frames each pixel has been foreground; those learnt now (ghosts)
	fgGrey, grid                         gocv.Mat
	haveBG                               bool
	chroma                               *chroma // nil until a colour frame
	suspendUntil                         time.Duration
	noiseAvg                             float64 // running mean |difference| of undisturbed frames
	fracAvg                              float64 // running mean of the changed fraction
}

// measure is what the difference from the background found.
type measure struct {
	ratio float64 // the frame's gain against the background
	frac  float64 // changed share of the watched area
	jump  bool    // the noise jumped: a global change
}

// load makes the frame's watched region grey, blurred and float, and
// hands its colour to the chroma stage.
func (d *Detector) load(frame gocv.Mat) {
	region := frame.Region(d.roi)
	if frame.Channels() == 3 {
		gocv.CvtColor(region, &d.gray, gocv.ColorBGRToGray)
		if d.chroma == nil {
			d.chroma = newChroma(d.roi.Dx(), d.roi.Dy())
		}
		d.chroma.load(region)
	} else {
		region.CopyTo(&d.gray)
	}
	region.Close()
	gocv.GaussianBlur(d.gray, &d.gray, image.Pt(3, 3), 0, 0, gocv.BorderDefault)
	d.gray.ConvertTo(&d.grayF, gocv.MatTypeCV32F)
}

// startBackground learns the first frame as the scene.
func (b *background) startBackground(pts time.Duration) {
	b.grayF.CopyTo(&b.bg)
	b.haveBG = true
	b.suspendUntil = pts + suspendFor/2
}

// difference thresholds the frame against the background, gain
// compensated, at a threshold scaled by the noise, into fg.
func (b *background) difference() measure {
	// Compensate a global gain (auto-exposure, clouds over the whole
	// facade) before differencing.
	mf, mb := b.grayF.MeanWithMask(b.mask).Val1, b.bg.MeanWithMask(b.mask).Val1
	ratio := 1.0
	if mb > 1 {
		ratio = max(0.25, min(4, mf/mb))
	}
	gocv.AddWeighted(b.grayF, 1, b.bg, -ratio, 0, &b.diff)
	gocv.ConvertScaleAbs(b.diff, &b.d8, 1, 0)
	noise := b.d8.MeanWithMask(b.mask).Val1
	// a change over much of the view (a floodlight) raises the noise
	// estimate and with it the threshold: that is a global change too
	jump := b.noiseAvg > 0 && noise > noiseJump*b.noiseAvg+2
	switch {
	case b.noiseAvg == 0:
		b.noiseAvg = noise
	case !jump:
		b.noiseAvg = 0.95*b.noiseAvg + 0.05*noise
	}
	thr := max(minThreshold, noiseK*noise)
	gocv.Threshold(b.d8, &b.fg, float32(thr), 255, gocv.ThresholdBinary)
	gocv.BitwiseAnd(b.fg, b.mask, &b.fg)
	frac := float64(gocv.CountNonZero(b.fg)) / float64(b.watched)
	return measure{ratio: ratio, frac: frac, jump: jump}
}

// learnSuspended re-learns the scene quickly while detection is blind.
func (b *background) learnSuspended() {
	gocv.AccumulatedWeighted(b.grayF, &b.bg, bgAlphaFast)
	if b.colour() {
		b.chroma.learn(bgAlphaFast, nil)
	}
}

// learn updates the background after a still-camera frame.
func (b *background) learn(frames int, ratio float64) {
	// Learn the background where nothing moves, so a slow start (a drop
	// from rest) leaves no ghost; every absorbEvery frames learn everywhere
	// so that a light left on becomes backgrounb.
	// While the gain is off (exposure ramping) learn quickly where nothing
	// moves, so the background follows the new exposure.
	alpha := bgAlpha
	if math.Abs(ratio-1) > 0.04 {
		alpha = bgAlphaFast
	}
	if frames%absorbEvery == 0 && alpha == bgAlpha {
		gocv.AccumulatedWeighted(b.grayF, &b.bg, bgAlpha)
	} else {
		gocv.BitwiseNot(b.fg, &b.notFG)
		gocv.AccumulatedWeightedWithMask(b.grayF, &b.bg, alpha, b.notFG)
	}
	b.absorbStill()
	if b.colour() {
		// learnt everywhere, quickly: the encoder leaves a moving object's
		// colour smeared in blocks it does not repaint, and such a ghost
		// must fade before it captures a passing track
		b.chroma.learn(max(alpha, chromaAlpha), nil)
	}
}

// learnShaken learns the frame moved back into place, so what changed
// slowly during a long shake (clouds) is no global change when it ends.
func (d *Detector) learnShaken() {
	vision.Shift(d.grayF, &d.bgS, -d.shift[0], -d.shift[1])
	gocv.BitwiseNot(d.fg, &d.notFG)
	clearBorder(&d.notFG, shiftBorder(d.shift[0], d.shift[1]))
	gocv.AccumulatedWeightedWithMask(d.bgS, &d.bg, bgAlpha, d.notFG)
}

// foreground adds what changed in colour only (not while the camera
// settles after a shake: the encoder repaints the coarse chroma in
// blocks for a while) and dilates; it reports whether chroma was used.
func (d *Detector) foreground(pts time.Duration, shaken bool) bool {
	withChroma := !shaken && d.colour() && pts >= d.shakeUntil
	if withChroma {
		d.fg.CopyTo(&d.fgGrey)
		d.chroma.detect(&d.fg)
		gocv.BitwiseAnd(d.fg, d.mask, &d.fg)
	}
	gocv.Dilate(d.fg, &d.fg, d.kernel)
	return withChroma
}

// absorbStill learns quickly where the foreground has stayed for
// stillFrames: a ghost (a snowflake in the frame the background started
// from) or a window lit a moment ago would otherwise stay for seconds,
// hiding or capturing a fall that passes over it; a thing that stays is
// no throw.
func (b *background) absorbStill() {
	if b.fgAge.Empty() {
		b.fgAge = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), b.fg.Rows(), b.fg.Cols(), gocv.MatTypeCV8U)
	}
	b.fgAge.AddUChar(1)
	gocv.BitwiseAnd(b.fgAge, b.fg, &b.fgAge)
	gocv.Threshold(b.fgAge, &b.still, stillFrames-1, 255, gocv.ThresholdBinary)
	if gocv.CountNonZero(b.still) > 0 {
		gocv.AccumulatedWeightedWithMask(b.grayF, &b.bg, bgAlphaFast, b.still)
	}
}

// usualThreshold is the difference threshold at the running noise level,
// for frames whose own noise a big change has inflateb.
func (b *background) usualThreshold() float64 { return max(minThreshold, noiseK*b.noiseAvg) }

// spread is the share of an 8×8 grid over the watched area in which
// something changeb. A global change (a shake, lights, a gust over the
// whole view) is everywhere; an insect or a hand near the lens, however
// big, covers a few cells.
func (b *background) spread() float64 {
	gocv.Resize(b.fg, &b.grid, image.Pt(8, 8), 0, 0, gocv.InterpolationArea)
	gocv.Threshold(b.grid, &b.grid, 1, 255, gocv.ThresholdBinary) // > 0.4 % of a cell
	return float64(gocv.CountNonZero(b.grid)) / 64
}

// colour: this frame came in colour (a grey camera or an IR night image has no chroma).
func (b *background) colour() bool { return b.chroma != nil && b.chroma.active() }
