package throw

import (
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"
)

// blobFinder labels the foreground into blobs of a plausible size.
type blobFinder struct {
	labels, stats, cents gocv.Mat
	blobAvg              float64 // running mean of blobs per frame
	clutterRun           int     // consecutive cluttered frames skipped
}

// findBlobs labels the foreground; a cluttered frame is tried again on
// grey alone (chroma noise) and stabilised (a shake), then skipped, then
// suspends detection. ok is false when the frame gives no blobs to track.
func (d *Detector) findBlobs(pts time.Duration, ratio float64, withChroma bool) (blobs []obs, ok bool) {
	blobs, clutter := d.blobs(pts)
	if clutter && withChroma {
		// chroma noise (a block-repainting encoder): grey alone
		gocv.Dilate(d.fgGrey, &d.fg, d.kernel)
		blobs, clutter = d.blobs(pts)
	}
	if clutter && d.stabilise(pts, ratio) {
		gocv.Dilate(d.fg, &d.fg, d.kernel)
		blobs, clutter = d.blobs(pts)
	}
	switch {
	case !clutter:
		d.clutterRun = 0
		d.measureRest(pts)
	case d.clutterRun < maxClutterSkip:
		// one noisy frame (the encoder catching up after a shake): skip
		// it; tracks survive a few misses, a suspension would blind us
		d.clutterRun++
		d.track(pts, nil)
		return nil, false
	default:
		d.clutterRun = 0
		d.Stats.Suspensions++
		d.suspend(pts)
		return nil, false
	}
	return blobs, true
}

// obs is a blob: x, y, w, h in facade px, where it is tracked and fitted;
// u, v, iw, ih in the image, where it is drawn and reported.
type obs struct {
	t      time.Duration
	x, y   float64
	w, h   int
	u, v   float64
	iw, ih int
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
		u, v := d.cents.GetDoubleAt(i, 0)+float64(d.roi.Min.X)-d.shift[0], d.cents.GetDoubleAt(i, 1)+float64(d.roi.Min.Y)-d.shift[1]
		o := obs{t: pts, x: u, y: v, w: w0, h: h0, u: u, v: v, iw: w0, ih: h0}
		if !d.plane.identity() {
			o.x, o.y = d.plane.toFacade(u, v)
			sx, sy := d.plane.scale(u, v)
			o.w, o.h = max(1, int(math.Round(float64(w0)*sx))), max(1, int(math.Round(float64(h0)*sy)))
		}
		out = append(out, o)
	}
	return out, false
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

func medianWidth(pts []obs) int { return median(pts, func(p obs) int { return p.w }) }

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
