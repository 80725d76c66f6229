package throw

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/vision"
)

func init() {
	vision.Register(vision.Plugin{Name: "throw", Order: 3, New: New, Check: Check})
}

// Tuning that is not configuration; docs/throw.md explains each.
const (
	bgAlpha        = 0.04  // background learning rate per frame
	bgAlphaFast    = 0.35  // while suspended: re-learn the scene quickly
	absorbEvery    = 6     // frames: how often moving pixels are learnt too
	minThreshold   = 14    // grey levels; the noise-scaled threshold never goes below
	noiseK         = 6.0   // threshold = noiseK × mean |difference| (≈ 5σ of Gaussian noise)
	globalFrac     = 0.025 // changed fraction of the watched area that means a global change
	globalSpread   = 0.3   // … if it is spread over this share of the view
	maxGainStep    = 0.6   // a larger gain jump between frame and background suspends
	noiseJump      = 3     // mean |difference| this many times its average: a global change
	maxBlobs       = 80    // more blobs in one frame is clutter (shake, heavy rain): suspend
	suspendFor     = 800 * time.Millisecond
	maxMisses      = 3   // frames a track may go unseen
	maxTracks      = 400 // safety cap (snow)
	maxTrackPoints = 400 // 16 s at 25 fps
	minFitPoints   = 8
	maxBackExtrap  = 1.2                     // s: how far before the first observation the origin may be traced
	lostMemory     = 1500 * time.Millisecond // how long ended tracks may be stitched to a later one
	maxLost        = 200
	maxStitch      = 4 // fragments prepended to one track
	maxTailDrop    = 4 // points at the end of a fragment that may be dropped to stitch it
	dupMemory      = 4 * time.Second
	rainTracks     = 4 // parallel falling tracks that mean rain or snow
	rainHold       = 1500 * time.Millisecond
	rainWider      = 2    // px: blobs this much wider than the drops are not drops
	rainV0         = 2.5  // m/s: in rain, a fall first seen faster than this may be hopping between drops
	crowdFast      = 3    // … unless the crowd is slower (snow) and it is this many times faster
	shakeResponse  = 0.05 // phase correlation peak that means the view moved as a whole
	maxShakePx     = 24
	growLimit      = 4                      // a blob this many times a track's median area does not continue it
	minGrownArea   = 30                     // px²: … if it is at least this big
	maxClutterSkip = 2                      // cluttered frames skipped before suspending
	shakeHold      = 500 * time.Millisecond // after a shaken frame, measure the shift of every frame
	restEvery      = 10 * time.Second       // how often the phase correlation's reading at rest is taken again
	stillFrames    = 15                     // frames a pixel may stay foreground before it is learnt (a ghost)
)

// New is the vision.Factory: nil when cam has no detect.throw section.
func New(cam config.Camera) (vision.Detector, error) {
	if cam.Detect.Throw == nil {
		return nil, nil
	}
	o, err := ParseOptions("detect.throw", cam.Detect.Throw)
	if err != nil {
		return nil, fmt.Errorf("camera %s: %w", cam.ID, err)
	}
	if cam.Detect.FPS < MinFPS {
		return nil, fmt.Errorf("camera %s: detect.fps %v is too low for throw detection: use the full camera rate (12.5–25)", cam.ID, cam.Detect.FPS)
	}
	for i, z := range cam.Detect.Zones {
		if len(z.Points) < 3 {
			return nil, fmt.Errorf("camera %s: detect.zones[%d] (%s): a zone needs at least 3 points", cam.ID, i, z.Name)
		}
	}
	return NewDetector(o, cam.Detect.Zones), nil
}

// NewDetector builds a detector from decoded options.
func NewDetector(o Options, zones []config.Zone) *Detector {
	return &Detector{opt: o, zones: zones, ppm: o.PxPerMetre(), gpx: o.GPx()}
}

// Detector is the throw detector of one camera. It is not safe for
// concurrent use: the camera calls Detect from one goroutine.
type Detector struct {
	opt   Options
	zones []config.Zone
	ppm   float64 // px per metre
	gpx   float64 // g in px/s²

	size                                                               image.Point
	roi                                                                image.Rectangle
	open                                                               bool
	mask                                                               gocv.Mat // 255 where motion counts (ROI size)
	watched                                                            int
	gray, grayF, bg, diff, d8, fg, notFG, labels, stats, cents, kernel gocv.Mat
	fgAge, still                                                       gocv.Mat // frames each pixel has been foreground; those learnt now (ghosts)
	bgS, bgLo, bgHi, diff2, hann, pcA, pcB, noWin                      gocv.Mat // stabilisation (camera shake)
	fgGrey, grid                                                       gocv.Mat
	haveBG                                                             bool
	shift                                                              [2]float64 // this frame's shake offset from the background, px
	clutterRun                                                         int        // consecutive cluttered frames skipped
	shakeUntil                                                         time.Duration
	rest                                                               [2]float64 // phase correlation's reading at rest (see measureRest)
	restAt                                                             time.Duration
	haveRest                                                           bool
	chroma                                                             *chroma // nil until a colour frame

	suspendUntil time.Duration
	rainUntil    time.Duration
	rainVY       float64 // px/s: the drops' vertical speed while it rains
	rainW        int     // px: the drops' median blob width
	noiseAvg     float64 // running mean |difference| of undisturbed frames
	blobAvg      float64 // running mean of blobs per frame
	fracAvg      float64 // running mean of the changed fraction
	lastPTS      time.Duration
	tracks       []*track
	lost         []*track // ended tracks, newest last: may be the start of a later fall
	nextID       int
	emitted      []emittedPath

	// Stats for evaluation and tests.
	Stats Stats
	debug func(tr *track, why string) // tests: why a track was rejected
}

// Counts is vision.Counting: the Stats for metrics. A camera whose
// throw_shaken_frames keeps rising has a loose mount; throw_suspensions
// are times detection was blind (lights, exposure jumps).
func (d *Detector) Counts() map[string]int {
	s := d.Stats
	return map[string]int{"throw_frames": s.Frames, "throw_suspensions": s.Suspensions, "throw_suspended_frames": s.SuspendedFrames,
		"throw_shaken_frames": s.ShakeFrames, "throw_tracks": s.Tracks, "throw_emitted": s.Emitted,
		"throw_suppressed": s.Suppressed, "throw_rain_held": s.RainHeld}
}

// Stats count what the detector did.
type Stats struct {
	Frames, SuspendedFrames, Suspensions, ShakeFrames, Tracks, Emitted, Suppressed, RainHeld int
}

type obs struct {
	t    time.Duration
	x, y float64
	w, h int
}

type track struct {
	id      int
	kx, ky  axis
	pts     []obs
	misses  int
	last    time.Duration
	emitted bool
}

type emittedPath struct {
	t0      time.Duration
	fy, fx  fit // in seconds from t0
	until   time.Duration
	floorPx float64
}

func (d *Detector) setup(sz image.Point) {
	d.Close()
	d.size = sz
	fc := d.opt.Facade
	fp := fc.FloorPx()
	mx := 0.05 * (fc.RightX - fc.LeftX)
	r := image.Rect(int(fc.LeftX-mx), int(fc.TopY-fp), int(math.Ceil(fc.RightX+mx)), int(math.Ceil(fc.BottomY+fp/2)))
	d.roi = r.Intersect(image.Rect(0, 0, sz.X, sz.Y))
	if d.roi.Dx() < 8 || d.roi.Dy() < 8 {
		d.roi = image.Rectangle{}
		return
	}
	w, h := d.roi.Dx(), d.roi.Dy()
	var include, exclude [][]image.Point
	for _, z := range d.zones {
		pts := make([]image.Point, len(z.Points))
		for i, p := range z.Points {
			pts[i] = image.Pt(p[0]-d.roi.Min.X, p[1]-d.roi.Min.Y)
		}
		if z.Mask {
			exclude = append(exclude, pts)
		} else {
			include = append(include, pts)
		}
	}
	if len(include) == 0 {
		d.mask = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), h, w, gocv.MatTypeCV8U)
	} else {
		d.mask = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), h, w, gocv.MatTypeCV8U)
		pv := gocv.NewPointsVectorFromPoints(include)
		gocv.FillPoly(&d.mask, pv, color.RGBA{255, 255, 255, 0})
		pv.Close()
	}
	if len(exclude) > 0 {
		pv := gocv.NewPointsVectorFromPoints(exclude)
		gocv.FillPoly(&d.mask, pv, color.RGBA{0, 0, 0, 0})
		pv.Close()
	}
	d.watched = gocv.CountNonZero(d.mask)
	for _, m := range d.scratch() {
		*m = gocv.NewMat()
	}
	d.kernel = gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))
	d.open = true
	d.haveBG, d.haveRest = false, false
	d.tracks = nil
	d.lost, d.noiseAvg, d.blobAvg, d.fracAvg = nil, 0, 0, 0
}

// scratch is every working Mat setup makes and Close frees (besides the
// mask and the kernel, made their own way): one list, so none leaks.
func (d *Detector) scratch() []*gocv.Mat {
	return []*gocv.Mat{&d.gray, &d.grayF, &d.bg, &d.diff, &d.d8, &d.fg, &d.notFG, &d.fgAge, &d.still, &d.labels, &d.stats, &d.cents, &d.bgS, &d.bgLo, &d.bgHi, &d.diff2, &d.hann, &d.pcA, &d.pcB, &d.noWin, &d.fgGrey, &d.grid}
}

// Detect consumes one frame.
func (d *Detector) Detect(f vision.Frame) []vision.Detection {
	if f.Mat.Empty() || (f.Mat.Channels() != 3 && f.Mat.Channels() != 1) {
		return nil
	}
	if sz := image.Pt(f.Mat.Cols(), f.Mat.Rows()); sz != d.size {
		d.setup(sz)
	}
	if d.roi.Empty() || d.watched == 0 {
		return nil
	}
	d.Stats.Frames++
	if f.PTS < d.lastPTS { // a new loop of a file: start over
		d.haveBG, d.tracks, d.emitted, d.lost, d.noiseAvg, d.blobAvg, d.fracAvg = false, nil, nil, nil, 0, 0, 0
		if d.chroma != nil {
			d.chroma.reset()
		}
	}
	d.lastPTS = f.PTS
	region := f.Mat.Region(d.roi)
	if f.Mat.Channels() == 3 {
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
	if !d.haveBG {
		d.grayF.CopyTo(&d.bg)
		d.haveBG = true
		d.suspendUntil = f.PTS + suspendFor/2
		return nil
	}
	// Compensate a global gain (auto-exposure, clouds over the whole
	// facade) before differencing.
	mf, mb := d.grayF.MeanWithMask(d.mask).Val1, d.bg.MeanWithMask(d.mask).Val1
	ratio := 1.0
	if mb > 1 {
		ratio = max(0.25, min(4, mf/mb))
	}
	gocv.AddWeighted(d.grayF, 1, d.bg, -ratio, 0, &d.diff)
	gocv.ConvertScaleAbs(d.diff, &d.d8, 1, 0)
	noise := d.d8.MeanWithMask(d.mask).Val1
	// a change over much of the view (a floodlight) raises the noise
	// estimate and with it the threshold: that is a global change too
	jump := d.noiseAvg > 0 && noise > noiseJump*d.noiseAvg+2
	switch {
	case d.noiseAvg == 0:
		d.noiseAvg = noise
	case !jump:
		d.noiseAvg = 0.95*d.noiseAvg + 0.05*noise
	}
	thr := max(minThreshold, noiseK*noise)
	gocv.Threshold(d.d8, &d.fg, float32(thr), 255, gocv.ThresholdBinary)
	gocv.BitwiseAnd(d.fg, d.mask, &d.fg)
	frac := float64(gocv.CountNonZero(d.fg)) / float64(d.watched)

	suspended := f.PTS < d.suspendUntil
	// a gain change alone is compensated (auto-exposure ramps while a
	// fall goes on); only a change the gain does not explain suspends
	// steady weather (snow) changes a steady share of the view; a sudden
	// rise is a global change
	fracAvg := d.fracAvg
	d.shift = [2]float64{}
	shaken := false
	global := (frac > globalFrac && frac > 2.5*fracAvg) || jump
	if !suspended && (global || f.PTS < d.shakeUntil) && math.Abs(ratio-1) <= maxGainStep {
		// the whole view moved (camera shake): follow it instead of going
		// blind; while it shakes, small moves that do not trip the global
		// test are followed too, so they are not learnt into the background
		shaken = d.stabilise(f.PTS, ratio)
	}
	if !shaken {
		d.fracAvg = 0.9*d.fracAvg + 0.1*frac
	}
	if !shaken && global {
		// at the usual noise level (a big change raised this frame's
		// threshold): is the change spread over the view, or is it an
		// insect or a hand at the lens, whose blob is too big to track?
		gocv.Threshold(d.d8, &d.fg, float32(d.usualThreshold()), 255, gocv.ThresholdBinary)
		gocv.BitwiseAnd(d.fg, d.mask, &d.fg)
		global = d.spread() >= globalSpread
	}
	if !shaken && (global || math.Abs(ratio-1) > maxGainStep) {
		// a global change (lights, exposure jump, shake): re-learn, no alarms
		if !suspended {
			d.Stats.Suspensions++
		}
		d.suspend(f.PTS)
		suspended = true
	}
	if suspended {
		gocv.AccumulatedWeighted(d.grayF, &d.bg, bgAlphaFast)
		if d.colour() {
			d.chroma.learn(bgAlphaFast, nil)
		}
		d.Stats.SuspendedFrames++
		return nil
	}
	// not while the camera settles after a shake: the encoder repaints
	// the coarse chroma in blocks for a while
	withChroma := !shaken && d.colour() && f.PTS >= d.shakeUntil
	if withChroma {
		d.fg.CopyTo(&d.fgGrey)
		d.chroma.detect(&d.fg)
		gocv.BitwiseAnd(d.fg, d.mask, &d.fg)
	}
	gocv.Dilate(d.fg, &d.fg, d.kernel)
	if shaken {
		blobs, _ := d.blobs(f.PTS)
		d.track(f.PTS, blobs)
		// learn the frame moved back into place, so what changed slowly
		// during a long shake (clouds) is no global change when it ends
		vision.Shift(d.grayF, &d.bgS, -d.shift[0], -d.shift[1])
		gocv.BitwiseNot(d.fg, &d.notFG)
		clearBorder(&d.notFG, shiftBorder(d.shift[0], d.shift[1]))
		gocv.AccumulatedWeightedWithMask(d.bgS, &d.bg, bgAlpha, d.notFG)
		return d.classify(f)
	}
	// Learn the background where nothing moves, so a slow start (a drop
	// from rest) leaves no ghost; every absorbEvery frames learn everywhere
	// so that a light left on becomes background.
	// While the gain is off (exposure ramping) learn quickly where nothing
	// moves, so the background follows the new exposure.
	alpha := bgAlpha
	if math.Abs(ratio-1) > 0.04 {
		alpha = bgAlphaFast
	}
	if d.Stats.Frames%absorbEvery == 0 && alpha == bgAlpha {
		gocv.AccumulatedWeighted(d.grayF, &d.bg, bgAlpha)
	} else {
		gocv.BitwiseNot(d.fg, &d.notFG)
		gocv.AccumulatedWeightedWithMask(d.grayF, &d.bg, alpha, d.notFG)
	}
	d.absorbStill()
	if d.colour() {
		// learnt everywhere, quickly: the encoder leaves a moving object's
		// colour smeared in blocks it does not repaint, and such a ghost
		// must fade before it captures a passing track
		d.chroma.learn(max(alpha, chromaAlpha), nil)
	}
	blobs, clutter := d.blobs(f.PTS)
	if clutter && withChroma {
		// chroma noise (a block-repainting encoder): grey alone
		gocv.Dilate(d.fgGrey, &d.fg, d.kernel)
		blobs, clutter = d.blobs(f.PTS)
	}
	if clutter && d.stabilise(f.PTS, ratio) {
		gocv.Dilate(d.fg, &d.fg, d.kernel)
		blobs, clutter = d.blobs(f.PTS)
	}
	switch {
	case !clutter:
		d.clutterRun = 0
		d.measureRest(f.PTS)
	case d.clutterRun < maxClutterSkip:
		// one noisy frame (the encoder catching up after a shake): skip
		// it; tracks survive a few misses, a suspension would blind us
		d.clutterRun++
		d.track(f.PTS, nil)
		return nil
	default:
		d.clutterRun = 0
		d.Stats.Suspensions++
		d.suspend(f.PTS)
		return nil
	}
	d.track(f.PTS, blobs)
	return d.classify(f)
}

// absorbStill learns quickly where the foreground has stayed for
// stillFrames: a ghost (a snowflake in the frame the background started
// from) or a window lit a moment ago would otherwise stay for seconds,
// hiding or capturing a fall that passes over it; a thing that stays is
// no throw.
func (d *Detector) absorbStill() {
	if d.fgAge.Empty() {
		d.fgAge = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), d.fg.Rows(), d.fg.Cols(), gocv.MatTypeCV8U)
	}
	d.fgAge.AddUChar(1)
	gocv.BitwiseAnd(d.fgAge, d.fg, &d.fgAge)
	gocv.Threshold(d.fgAge, &d.still, stillFrames-1, 255, gocv.ThresholdBinary)
	if gocv.CountNonZero(d.still) > 0 {
		gocv.AccumulatedWeightedWithMask(d.grayF, &d.bg, bgAlphaFast, d.still)
	}
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

// usualThreshold is the difference threshold at the running noise level,
// for frames whose own noise a big change has inflated.
func (d *Detector) usualThreshold() float64 { return max(minThreshold, noiseK*d.noiseAvg) }

// spread is the share of an 8×8 grid over the watched area in which
// something changed. A global change (a shake, lights, a gust over the
// whole view) is everywhere; an insect or a hand near the lens, however
// big, covers a few cells.
func (d *Detector) spread() float64 {
	gocv.Resize(d.fg, &d.grid, image.Pt(8, 8), 0, 0, gocv.InterpolationArea)
	gocv.Threshold(d.grid, &d.grid, 1, 255, gocv.ThresholdBinary) // > 0.4 % of a cell
	return float64(gocv.CountNonZero(d.grid)) / 64
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

// colour: this frame came in colour (a grey camera or an IR night image has no chroma).
func (d *Detector) colour() bool { return d.chroma != nil && d.chroma.active() }

func (d *Detector) suspend(pts time.Duration) {
	d.suspendUntil = pts + suspendFor
	if !d.fgAge.Empty() {
		d.fgAge.SetTo(gocv.NewScalar(0, 0, 0, 0))
	}
	// tracks cannot be followed across a global change; emitted paths are
	// kept so the same fall is not reported twice, and the tracks so far may
	// be stitched to the start of a fall picked up again after it
	for _, tr := range d.tracks {
		d.lose(tr)
	}
	d.tracks = nil
}

// lose keeps an ended track that may be the observed start of a later fall.
func (d *Detector) lose(tr *track) {
	if tr.emitted || len(tr.pts) < 2 {
		return
	}
	keep := d.lost[:0]
	for _, l := range d.lost {
		if tr.last-l.last <= lostMemory {
			keep = append(keep, l)
		}
	}
	d.lost = append(keep, tr)
	if len(d.lost) > maxLost {
		d.lost = d.lost[len(d.lost)-maxLost:]
	}
}

func (d *Detector) blobs(pts time.Duration) ([]obs, bool) {
	n := gocv.ConnectedComponentsWithStats(d.fg, &d.labels, &d.stats, &d.cents)
	// many blobs at once is clutter (shake); many blobs all the time is
	// weather (snow, rain), which the tracks and the rain guard handle
	avg := d.blobAvg
	if avg == 0 { // first look after (re)learning: the scene as it is
		avg = float64(n - 1)
	}
	d.blobAvg = 0.9*avg + 0.1*float64(n-1)
	if n-1 > maxBlobs && float64(n-1) > 2.5*avg {
		return nil, true
	}
	var out []obs
	for i := 1; i < n; i++ {
		w := int(d.stats.GetIntAt(i, 2))
		h := int(d.stats.GetIntAt(i, 3))
		area := int(d.stats.GetIntAt(i, 4))
		// dilation grows a blob by 1 px each side
		w0, h0 := w-2, h-2
		if max(w0, h0) < d.opt.MinSizePx || w0 > d.opt.MaxSizePx || h0 > d.opt.MaxSizePx || area < 9 {
			continue
		}
		out = append(out, obs{t: pts, x: d.cents.GetDoubleAt(i, 0) + float64(d.roi.Min.X) - d.shift[0], y: d.cents.GetDoubleAt(i, 1) + float64(d.roi.Min.Y) - d.shift[1], w: w0, h: h0})
	}
	return out, false
}

// smallArea is the median blob area of a track of at least 5 points, or 0.
func (tr *track) smallArea() int {
	if len(tr.pts) < 5 {
		return 0
	}
	return median(tr.pts[max(0, len(tr.pts)-8):], func(p obs) int { return p.w * p.h })
}

// median of f over pts (the upper one of an even count).
func median(pts []obs, f func(obs) int) int {
	vs := make([]int, len(pts))
	for i, p := range pts {
		vs[i] = f(p)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// visibility weighs each point of a fit by how well its blob matches the
// object's full height and width (the squared ratio): the centroid of an
// object partly hidden by a window frame, or partly of the wall's own
// shade, is off by up to half of what is hidden, and that of a blob merged
// with a snowflake by up to half of what was added.
func visibility(pts []obs) (wy, wx []float64) {
	fh, fw := fullSizes(pts)
	return weights(pts, fh, fw)
}

// weights are visibility's against a given full height and width.
func weights(pts []obs, fh, fw float64) (wy, wx []float64) {
	wy, wx = make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		wy[i] = math.Pow(min(float64(p.h)/fh, fh/float64(p.h)), 2)
		wx[i] = math.Pow(min(float64(p.w)/fw, fw/float64(p.w)), 2)
	}
	return wy, wx
}

// fullSizes are the object's full height and width (fullSize of each).
func fullSizes(pts []obs) (fh, fw float64) {
	return fullSize(pts, func(p obs) int { return p.h }), fullSize(pts, func(p obs) int { return p.w })
}

// fullSize is the size f of the object when wholly seen: the upper
// quartile over pts (at least 1).
func fullSize(pts []obs, f func(obs) int) float64 {
	vs := make([]int, len(pts))
	for i, p := range pts {
		vs[i] = f(p)
	}
	slices.Sort(vs)
	return float64(max(1, vs[len(vs)*3/4]))
}

func (d *Detector) newTrack(o obs) *track {
	d.nextID++
	d.Stats.Tracks++
	vs := 6 * d.ppm // m/s of an unknown start, in px/s
	r := 1.0
	q := 40 * d.gpx * d.gpx // jerk density: lets drag and perspective bend the path
	return &track{id: d.nextID, kx: newAxis(o.x, vs, d.gpx, q, r), ky: newAxis(o.y, vs, 1.5*d.gpx, q, r), pts: []obs{o}, last: o.t}
}

func (d *Detector) track(pts time.Duration, blobs []obs) {
	type pair struct {
		ti, bi int
		d2     float64
	}
	var pairs []pair
	for ti, tr := range d.tracks {
		dt := (pts - tr.last).Seconds()
		px, py := tr.kx, tr.ky
		px.predict(dt)
		py.predict(dt)
		var gate float64
		if len(tr.pts) < 3 {
			gate = max(10, 4*d.ppm*dt*float64(1+tr.misses)+4)
		} else {
			gate = min(60, 3*math.Sqrt(px.innovVar()+py.innovVar())+3)
		}
		small := tr.smallArea()
		for bi, b := range blobs {
			dx, dy := b.x-px.x[0], b.y-py.x[0]
			if d2 := dx*dx + dy*dy; d2 <= gate*gate {
				if small > 0 && b.w*b.h > growLimit*small && b.w*b.h >= minGrownArea {
					// a big blob over a small steady one (an object passing
					// a snowflake) is not the flake grown: it must not hijack
					// the flake's track
					continue
				}
				if small > 0 {
					// the blob of the object's own size first: a snowflake
					// next to a big object must not take its track
					a := float64(max(1, b.w*b.h))
					d2 *= math.Sqrt(max(a/float64(small), float64(small)/a))
				}
				pairs = append(pairs, pair{ti, bi, d2})
			}
		}
	}
	// greedy nearest first, tracks of five points or more before younger
	// ones: a fragment (a flake seen twice) must not take the blob of an
	// object followed for a while
	young := func(p pair) bool { return len(d.tracks[p.ti].pts) < 5 }
	slices.SortStableFunc(pairs, func(a, b pair) int {
		if ya, yb := young(a), young(b); ya != yb {
			if ya {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.d2, b.d2)
	})
	usedT := make([]bool, len(d.tracks))
	usedB := make([]bool, len(blobs))
	for _, p := range pairs {
		if usedT[p.ti] || usedB[p.bi] {
			continue
		}
		usedT[p.ti], usedB[p.bi] = true, true
		tr, b := d.tracks[p.ti], blobs[p.bi]
		dt := (pts - tr.last).Seconds()
		tr.kx.predict(dt)
		tr.ky.predict(dt)
		tr.kx.update(b.x)
		tr.ky.update(b.y)
		tr.last = pts
		tr.misses = 0
		tr.pts = append(tr.pts, b)
		if len(tr.pts) > maxTrackPoints {
			tr.pts = tr.pts[len(tr.pts)-maxTrackPoints:]
		}
	}
	keep := d.tracks[:0]
	for i, tr := range d.tracks {
		if !usedT[i] {
			tr.misses++
		}
		if tr.misses <= maxMisses {
			keep = append(keep, tr)
		} else {
			d.lose(tr)
		}
	}
	d.tracks = keep
	for bi, b := range blobs {
		if !usedB[bi] && len(d.tracks) < maxTracks {
			d.tracks = append(d.tracks, d.newTrack(b))
		}
	}
}

// verdict is the classification of a track as a free fall.
type verdict struct {
	pts     []obs // observed points: the track, after any stitched fragments
	fy, fx  fit
	t0      time.Duration
	originT float64 // s from t0
	originX float64
	originY float64
	apexY   float64 // row of the traced-back apex, not capped (highest plausible origin)
	accel   float64 // px/s²
}

// fall decides whether tr is a free fall; ok is false for anything else.
// Fragments of tracks lost earlier that lie on the fitted path are
// stitched in front, so a fall picked up again after a gap (a missed
// detection, a shake) is traced to where it was first seen.
func (d *Detector) fall(tr *track) (verdict, bool) {
	if tr.misses > 0 {
		return verdict{}, false
	}
	v, why := d.fitFall(tr.pts)
	if why == "" || why == "span" || why == "short" {
		if pts := d.stitch(tr.pts, tr); len(pts) > len(tr.pts) {
			if v2, why2 := d.fitFall(pts); why2 == "" && d.fallsAsFitted(tr.pts, v2) {
				v, why = v2, ""
			}
		}
	}
	if why != "" && d.debug != nil {
		d.debug(tr, why)
	}
	return v, why == ""
}

// fallsAsFitted: the track's own points fall at least half as far as the
// path fitted with the fragments in front says they should. A track that
// stays put (a ghost, a blob on the wall) after fragments that happen to
// line up is no fall, however well the fragments fit.
func (d *Detector) fallsAsFitted(own []obs, v verdict) bool {
	a, b := own[0], own[len(own)-1]
	fit := v.fy.at((b.t - v.t0).Seconds()) - v.fy.at((a.t - v.t0).Seconds())
	return fit <= 0 || b.y-a.y >= 0.5*fit
}

// stitch prepends fragments that lie on the path fitted to pts: lost
// tracks, and the start of live ones (a track whose object merged with a
// drop and then followed the drops; self is the track of pts).
func (d *Detector) stitch(pts []obs, self *track) []obs {
	if len(pts) < 6 {
		return pts
	}
	var cands []*track
	for _, tr := range d.tracks {
		if tr != self && !tr.emitted && len(tr.pts) >= 2 && tr.pts[0].t < pts[0].t {
			cands = append(cands, tr)
		}
	}
	if len(cands)+len(d.lost) == 0 {
		return pts
	}
	// lost tracks are tried first, newest first
	live := len(cands)
	cands = append(cands, d.lost...)
	used := make([]bool, len(cands))
	// the object's full size, from the track: weights and tolerances of
	// every try below
	fh, fw := fullSizes(pts)
	for range maxStitch {
		t0 := pts[0].t
		// how fast the track starts: the object was slower before
		v0 := max(0, (pts[2].y-pts[0].y)/(pts[2].t-pts[0].t).Seconds())
		best := -1
		var frag []obs
		for i := len(cands) - 1; i >= 0; i-- {
			l := cands[i]
			if used[i] || t0-l.last > lostMemory {
				continue
			}
			// a fragment may overlap the track in time (an object split
			// into two blobs, or a ghost): its part before t0 counts
			k := 0
			for k < len(l.pts) && l.pts[k].t < t0 {
				k++
			}
			if k < 2 {
				continue
			}
			// a track that lost its object may have taken a few wrong
			// blobs (rain drops) before it ended: its tail may go; a drop's
			// track that took the object on its way has a wrong head: it
			// starts where the blobs grow to the object's size
			heads := []int{0}
			if h := objectRun(l.pts[:k], fh, fw); h > 0 && k-h >= 3 {
				heads = append(heads, h)
			}
			for _, h := range heads {
				if !d.mayLead(l.pts[h], pts[0], v0) {
					continue
				}
				for j := k; j >= max(h+2, k-maxTailDrop); j-- {
					// a live track was with the object a moment ago: its
					// end must lead to the track too (in snow hundreds of
					// flakes' tracks are live; this spares their fits)
					if i < live && !d.mayLead(l.pts[j-1], pts[0], v0) {
						continue
					}
					if d.onPath(l.pts[h:j], pts, fh, fw) {
						best, frag = i, l.pts[h:j]
						break
					}
				}
				if best >= 0 {
					break
				}
			}
			if best >= 0 {
				break
			}
		}
		if best < 0 {
			return pts
		}
		used[best] = true
		pts = append(append([]obs(nil), frag...), pts...)
	}
	return pts
}

// objectRun is where the last run of blobs of about the object's full
// size (fh×fw) in pts begins; len(pts) when the last blob is not one.
func objectRun(pts []obs, fh, fw float64) int {
	h := len(pts)
	for h > 0 && float64(pts[h-1].w) >= fw/2 && float64(pts[h-1].h) >= fh/2 {
		h--
	}
	return h
}

// mayLead: a fragment starting at a can lead to a track starting at b,
// whose speed there is v0 (px/s), without rising from below or moving
// faster than a thrown object (a cheap test before any fit: in snow
// there are hundreds of fragments).
func (d *Detector) mayLead(a, b obs, v0 float64) bool {
	dt := (b.t - a.t).Seconds()
	slack := 20.0
	return b.y-a.y >= -slack-2*d.ppm*dt && b.y-a.y <= (v0+2*d.ppm)*dt+slack &&
		math.Abs(b.x-a.x) <= 10*d.ppm*dt+slack
}

// pathFit fits pts as a fall: a parabola in y whose acceleration is
// plausible (else one with nominal g), a line in x; times from pts[0].
// Points are weighted against the full size fh×fw.
func (d *Detector) pathFit(pts []obs, fh, fw float64) (fy, fx fit, ok bool) {
	n := len(pts)
	ts, ys, xs := make([]float64, n), make([]float64, n), make([]float64, n)
	for i, p := range pts {
		ts[i], ys[i], xs[i] = (p.t - pts[0].t).Seconds(), p.y, p.x
	}
	wy, wx := weights(pts, fh, fw)
	fy, fx = polyfit(ts, ys, wy, 2), polyfit(ts, xs, wx, 1)
	if !fy.ok || !fx.ok {
		return fy, fx, false
	}
	if a := 2 * fy.c[2]; a < d.opt.GMin*d.gpx || a > d.opt.GMax*d.gpx {
		// too short to measure a: assume g
		for i := range ys {
			ys[i] -= 0.5 * d.gpx * ts[i] * ts[i]
		}
		fy = polyfit(ts, ys, wy, 1)
		fy.c[2] = 0.5 * d.gpx
	}
	return fy, fx, fy.ok && fy.c[1]+2*fy.c[2]*ts[n-1] > 0
}

// onPath: frag and pts together fit one fall, with every point of frag
// near the path (a fit of both, so a short track's poorly measured speed
// does not decide).
func (d *Detector) onPath(frag, pts []obs, fh, fw float64) bool {
	all := append(append([]obs(nil), frag...), pts...)
	fy, fx, ok := d.pathFit(all, fh, fw)
	if !ok {
		return false
	}
	span := all[len(all)-1].y - all[0].y
	if fy.rms > 1.5+0.015*span || fx.rms > 2+0.012*span {
		return false
	}
	// a blob partly hidden (by a window frame) shifts its centroid by up
	// to half the object's full size
	tol := 3 + 0.5*max(fh, fw) + 0.01*span
	for _, p := range frag {
		t := (p.t - all[0].t).Seconds()
		if math.Abs(fy.at(t)-p.y) > tol || math.Abs(fx.at(t)-p.x) > tol {
			return false
		}
	}
	return true
}

func (d *Detector) fitFall(pts []obs) (verdict, string) {
	n := len(pts)
	if n < minFitPoints {
		return verdict{}, "short"
	}
	minY := pts[0].y
	for _, p := range pts {
		minY = min(minY, p.y)
	}
	last := pts[n-1]
	span := last.y - minY
	if span < d.opt.MinFloors*d.opt.Facade.FloorPx() {
		return verdict{}, "span"
	}
	t0 := pts[0].t
	ts := make([]float64, n)
	ys := make([]float64, n)
	xs := make([]float64, n)
	for i, p := range pts {
		ts[i], ys[i], xs[i] = (p.t - t0).Seconds(), p.y, p.x
	}
	dur := ts[n-1]
	// enough of the fall was seen: few gaps
	frameDur := dur
	for i := 1; i < n; i++ {
		if dt := ts[i] - ts[i-1]; dt > 0 {
			frameDur = min(frameDur, dt)
		}
	}
	if frameDur > 0 && float64(n) < 0.6*dur/frameDur {
		return verdict{}, "gaps"
	}
	wy, wx := visibility(pts)
	fy := polyfit(ts, ys, wy, 2)
	fx := polyfit(ts, xs, wx, 1)
	if !fy.ok || !fx.ok {
		return verdict{}, "fit"
	}
	a := 2 * fy.c[2]
	if a < d.opt.GMin*d.gpx || a > d.opt.GMax*d.gpx {
		return verdict{}, fmt.Sprintf("accel %.2f g", a/d.gpx)
	}
	if fy.rms > 1.2+0.012*span || fx.rms > 1.5+0.01*span {
		return verdict{}, fmt.Sprintf("rms y %.1f x %.1f", fy.rms, fx.rms)
	}
	if vEnd := fy.c[1] + a*dur; vEnd <= 0 {
		return verdict{}, "rising"
	}
	if math.Abs(fx.c[1]) > 10*d.ppm { // 10 m/s sideways is no drop from a window
		return verdict{}, "sideways"
	}
	// origin: where the vertical velocity was zero (the release of a drop,
	// the top of a toss), traced back at most maxBackExtrap and not above
	// the roof; the first sighting when the apex was observed
	tv := -fy.c[1] / a
	to := 0.0
	apexY := fy.at(0)
	if tv < 0 {
		to = max(tv, -maxBackExtrap)
		apexY = fy.at(tv)
		if roof := d.opt.Facade.TopY; fy.at(to) < roof {
			// the later root of fy(t) = roof, which lies in [to, 0]
			if disc := fy.c[1]*fy.c[1] - 4*fy.c[2]*(fy.c[0]-roof); disc >= 0 {
				to = min(0, (-fy.c[1]+math.Sqrt(disc))/(2*fy.c[2]))
			}
		}
	}
	return verdict{pts: pts, fy: fy, fx: fx, t0: t0, originT: to, originX: fx.at(to), originY: fy.at(to), apexY: apexY, accel: a}, ""
}

func (d *Detector) duplicate(first obs, pts time.Duration) bool {
	keep := d.emitted[:0]
	dup := false
	for _, e := range d.emitted {
		if pts > e.until {
			continue
		}
		keep = append(keep, e)
		t := (first.t - e.t0).Seconds()
		if t >= 0 && math.Abs(e.fy.at(t)-first.y) < e.floorPx && math.Abs(e.fx.at(t)-first.x) < 0.5*e.floorPx+20 {
			dup = true
		}
	}
	d.emitted = keep
	return dup
}

// rainy reports many tracks falling in parallel at one speed (rain, snow),
// their median vertical speed (px/s) and median blob width (px).
func (d *Detector) rainy() (bool, float64, int) {
	type mover struct {
		vx, vy float64
		w      int
	}
	var vs []mover
	for _, tr := range d.tracks {
		if len(tr.pts) >= 4 && tr.misses == 0 && tr.ky.x[1] > 1.5*d.ppm {
			vs = append(vs, mover{tr.kx.x[1], tr.ky.x[1], medianWidth(tr.pts)})
		}
	}
	if len(vs) < rainTracks {
		return false, 0, 0
	}
	// the fastest crowd and the widest: with snow and rain together (or
	// two layers of rain), hopping must be judged against both kinds
	rain, vy, w := false, 0.0, 0
	for _, a := range vs {
		var crowd []float64
		var ws []int
		for _, b := range vs {
			if math.Hypot(a.vx-b.vx, a.vy-b.vy) < 0.3*math.Hypot(a.vx, a.vy) {
				crowd = append(crowd, b.vy)
				ws = append(ws, b.w)
			}
		}
		if len(crowd) >= rainTracks {
			slices.Sort(crowd)
			slices.Sort(ws)
			rain, vy, w = true, max(vy, crowd[len(crowd)/2]), max(w, ws[len(ws)/2])
		}
	}
	return rain, vy, w
}

func medianWidth(pts []obs) int { return median(pts, func(p obs) int { return p.w }) }

// crowdLike: during rain or snow, hopping between drops can fake a
// parabola, but such a track is already falling at about the drops' speed
// when first seen, and fits the parabola loosely. A thrown object is first
// seen near rest (its release or the top of a toss) and moves smoothly, so
// it is held only when it started fast or fits worse than a real fall.
// A track of blobs clearly wider than the drops is not made of drops; it
// is held only for its start (an object over a wall of its own grey is
// seen in pieces that fit loosely).
func (d *Detector) crowdLike(v verdict) bool {
	span := v.pts[len(v.pts)-1].y - v.pts[0].y
	if v0 := v.fy.c[1]; v0 > rainV0*d.ppm && (d.rainVY >= rainV0*d.ppm || v0 < crowdFast*d.rainVY) {
		return true
	}
	return v.fy.rms > 0.6+0.006*span && medianWidth(v.pts) < d.rainW+rainWider
}

func (d *Detector) classify(f vision.Frame) []vision.Detection {
	if rain, vy, w := d.rainy(); rain {
		d.rainUntil = f.PTS + rainHold
		d.rainVY, d.rainW = vy, w
	}
	raining := f.PTS < d.rainUntil
	var out []vision.Detection
	for _, tr := range d.tracks {
		if tr.emitted || tr.last != f.PTS {
			continue
		}
		v, ok := d.fall(tr)
		if !ok {
			continue
		}
		if d.debug != nil {
			d.debug(tr, fmt.Sprintf("FALL n=%d/%d v0=%.1f m/s a=%.2fg rain=%v crowd=%.1f m/s w=%d y0=%.0f t0=%v rms=%.2f w=%d", len(v.pts), len(tr.pts), v.fy.c[1]/d.ppm, v.accel/d.gpx, raining, d.rainVY/d.ppm, d.rainW, v.pts[0].y, v.t0, v.fy.rms, medianWidth(v.pts)))
		}
		if raining && d.crowdLike(v) {
			// fragments stitched in front may be flakes: the track alone
			v2, why := d.fitFall(tr.pts)
			if len(v.pts) == len(tr.pts) || why != "" || d.crowdLike(v2) {
				d.Stats.RainHeld++
				continue
			}
			v = v2
		}
		tr.emitted = true
		dup := d.duplicate(tr.pts[0], f.PTS)
		// remember the path either way, so a fall picked up again and
		// again is followed down
		d.emitted = append(d.emitted, emittedPath{t0: v.t0, fy: v.fy, fx: v.fx, until: f.PTS + dupMemory, floorPx: d.opt.Facade.FloorPx()})
		if dup {
			d.Stats.Suppressed++
			continue
		}
		d.Stats.Emitted++
		out = append(out, d.detection(f, v))
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func (d *Detector) detection(f vision.Frame, v verdict) vision.Detection {
	fc := d.opt.Facade
	floor := fc.FloorAt(v.originY)
	// the range: no lower than where it was first seen falling, no higher
	// than the uncapped apex of the fitted path
	lo, hi := fc.FloorAt(v.pts[0].y), fc.FloorAt(v.apexY)
	lo, hi = min(lo, floor), max(hi, floor)
	traj := make([]any, 0, len(v.pts)+1)
	var box image.Rectangle
	size := 0
	for i, p := range v.pts {
		traj = append(traj, []any{p.t.Milliseconds(), round1(p.x), round1(p.y)})
		r := image.Rect(int(p.x)-p.w/2, int(p.y)-p.h/2, int(p.x)+(p.w+1)/2+1, int(p.y)+(p.h+1)/2+1)
		if i == 0 {
			box = r
		} else {
			box = box.Union(r)
		}
		size = max(size, min(p.w, p.h))
	}
	box = box.Intersect(image.Rect(0, 0, d.size.X, d.size.Y))
	data := map[string]any{
		"origin":     map[string]any{"floor": floor, "floor_min": lo, "floor_max": hi, "x": round1(v.originX)},
		"trajectory": traj,
		"bbox":       vision.BBoxList(box),
		"accel_g":    math.Round(v.accel/d.gpx*100) / 100,
		"fit_rms_px": math.Round(v.fy.rms*100) / 100,
		"size_px":    size,
	}
	det := vision.Detection{Type: event.ThrowDetected, Severity: event.Critical, Data: data, BBox: box,
		Snapshot: d.opt.Snapshot, Clip: d.opt.Clip}
	if img, err := d.trajectoryImage(f.Mat, v, floor); err == nil {
		det.Images = []vision.Image{{Kind: "trajectory", ContentType: "image/jpeg", Data: img}}
	}
	return det
}

// trajectoryImage draws the observed path, the fitted path back to the
// origin and the origin floor's band on a copy of the frame.
func (d *Detector) trajectoryImage(frame gocv.Mat, v verdict, floor int) ([]byte, error) {
	img := gocv.NewMat()
	defer img.Close()
	if frame.Channels() == 1 {
		gocv.CvtColor(frame, &img, gocv.ColorGrayToBGR)
	} else {
		frame.CopyTo(&img)
	}
	fc := d.opt.Facade
	fp := fc.FloorPx()
	k := float64(floor - fc.LowestFloor)
	yb, yt := fc.BottomY-k*fp, fc.BottomY-(k+1)*fp
	band := image.Rect(int(fc.LeftX), int(yt), int(fc.RightX), int(yb))
	gocv.Rectangle(&img, band, color.RGBA{255, 160, 0, 0}, 2)
	// "7F" is how floors are written on Chinese signs; OpenCV's Hershey fonts have no CJK glyphs.
	gocv.PutText(&img, fmt.Sprintf("%dF", floor), image.Pt(int(fc.LeftX)+4, max(14, int(yt)-4)), gocv.FontHersheySimplex, 0.6, color.RGBA{255, 160, 0, 0}, 2)
	// fitted path from the origin to the first sighting (dashed by dots)
	for t := v.originT; t < 0; t += 0.02 {
		gocv.Circle(&img, image.Pt(int(v.fx.at(t)), int(v.fy.at(t))), 1, color.RGBA{255, 255, 255, 0}, -1)
	}
	pts := make([]image.Point, len(v.pts))
	for i, p := range v.pts {
		pts[i] = image.Pt(int(math.Round(p.x)), int(math.Round(p.y)))
	}
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
	gocv.Polylines(&img, pv, false, color.RGBA{255, 0, 0, 0}, 2)
	pv.Close()
	gocv.Circle(&img, image.Pt(int(v.originX), int(v.originY)), 6, color.RGBA{255, 255, 0, 0}, 2)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// Close frees the OpenCV buffers.
func (d *Detector) Close() {
	if d.chroma != nil {
		d.chroma.close()
		d.chroma = nil
	}
	if d.open {
		for _, m := range append(d.scratch(), &d.mask, &d.kernel) {
			m.Close()
			*m = gocv.Mat{}
		}
	}
	d.open = false
}
