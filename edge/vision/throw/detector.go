package throw

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
)

func init() {
	vision.Register(vision.Plugin{Name: "throw", Order: 3, New: New, Check: Check, Options: section{}, Sample: sample})
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
	for i, z := range cam.Detect.Regions {
		if len(z.Points) < 3 {
			return nil, fmt.Errorf("camera %s: detect.zones[%d] (%s): a region needs at least 3 points", cam.ID, i, z.Name)
		}
	}
	return NewDetector(o, cam.Detect.Regions), nil
}

// NewDetector builds a detector from decoded options.
func NewDetector(o Options, regions []config.Region) *Detector {
	return &Detector{opt: o, regions: regions, ppm: o.PxPerMetre(), gpx: o.GPx(), plane: o.Facade.plane()}
}

// Detector is the throw detector of one camera. It is not safe for
// concurrent use: the camera calls Detect from one goroutine. Its stages
// (docs/throw.md) each keep their state in their own struct.
type Detector struct {
	opt     Options
	regions []config.Region
	ppm     float64 // facade px per metre
	gpx     float64 // g in facade px/s²
	plane   plane   // image px ↔ facade px

	size    image.Point
	roi     image.Rectangle
	open    bool
	lastPTS time.Duration

	background
	stabiliser
	blobFinder
	tracker
	rainGuard
	emitted []emittedPath

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

func (d *Detector) setup(sz image.Point) {
	d.Close()
	d.size = sz
	d.roi = d.watchedRect().Intersect(image.Rect(0, 0, sz.X, sz.Y))
	if d.roi.Dx() < 8 || d.roi.Dy() < 8 {
		d.roi = image.Rectangle{}
		return
	}
	w, h := d.roi.Dx(), d.roi.Dy()
	var include, exclude [][]image.Point
	for _, z := range d.regions {
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

// watchedRect is the facade's image bounds with a margin: a floor above
// the roof (a toss), half a floor below the ground, 5 % each side.
func (d *Detector) watchedRect() image.Rectangle {
	fc := d.opt.Facade
	fp := fc.FloorPx()
	if d.plane.identity() {
		mx := 0.05 * (fc.RightX - fc.LeftX)
		return image.Rect(int(fc.LeftX-mx), int(fc.TopY-fp), int(math.Ceil(fc.RightX+mx)), int(math.Ceil(fc.BottomY+fp/2)))
	}
	mx := 0.05 * (fc.RightX - fc.LeftX)
	var r image.Rectangle
	for i, p := range [][2]float64{{fc.LeftX - mx, fc.TopY - fp}, {fc.RightX + mx, fc.TopY - fp}, {fc.RightX + mx, fc.BottomY + fp/2}, {fc.LeftX - mx, fc.BottomY + fp/2}} {
		x, y := d.plane.toImage(p[0], p[1])
		q := image.Rect(int(math.Floor(x)), int(math.Floor(y)), int(math.Ceil(x))+1, int(math.Ceil(y))+1)
		if i == 0 {
			r = q
		} else {
			r = r.Union(q)
		}
	}
	return r
}

// scratch is every working Mat setup makes and Close frees (besides the
// mask and the kernel, made their own way): one list, so none leaks.
func (d *Detector) scratch() []*gocv.Mat {
	return []*gocv.Mat{&d.gray, &d.grayF, &d.bg, &d.diff, &d.d8, &d.fg, &d.notFG, &d.fgAge, &d.still, &d.labels, &d.stats, &d.cents, &d.bgS, &d.bgLo, &d.bgHi, &d.diff2, &d.hann, &d.pcA, &d.pcB, &d.noWin, &d.fgGrey, &d.grid}
}

// Detect consumes one frame, stage by stage.
func (d *Detector) Detect(f vision.Frame) []vision.Detection {
	if !d.ready(f) {
		return nil
	}
	d.load(f.Mat)
	if !d.haveBG {
		d.startBackground(f.PTS)
		return nil
	}
	m := d.difference()
	shaken, suspended := d.globalChange(f.PTS, m)
	if suspended {
		d.learnSuspended()
		d.Stats.SuspendedFrames++
		return nil
	}
	withChroma := d.foreground(f.PTS, shaken)
	if shaken {
		blobs, _ := d.blobs(f.PTS)
		d.track(f.PTS, blobs)
		d.learnShaken()
		return d.classify(f)
	}
	d.learn(d.Stats.Frames, m.ratio)
	blobs, ok := d.findBlobs(f.PTS, m.ratio, withChroma)
	if !ok {
		return nil
	}
	d.track(f.PTS, blobs)
	return d.classify(f)
}

// ready sets up for the frame's size and starts over when a file loops;
// false: nothing to look at.
func (d *Detector) ready(f vision.Frame) bool {
	if f.Mat.Empty() || (f.Mat.Channels() != 3 && f.Mat.Channels() != 1) {
		return false
	}
	if sz := image.Pt(f.Mat.Cols(), f.Mat.Rows()); sz != d.size {
		d.setup(sz)
	}
	if d.roi.Empty() || d.watched == 0 {
		return false
	}
	d.Stats.Frames++
	if f.PTS < d.lastPTS { // a new loop of a file: start over
		d.haveBG, d.tracks, d.emitted, d.lost, d.noiseAvg, d.blobAvg, d.fracAvg = false, nil, nil, nil, 0, 0, 0
		if d.chroma != nil {
			d.chroma.reset()
		}
	}
	d.lastPTS = f.PTS
	return true
}

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
