package throw

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// rainGuard holds back falls that may be hops between rain drops or
// snowflakes while many tracks fall in parallel.
type rainGuard struct {
	rainUntil time.Duration
	rainVY    float64 // px/s: the drops' vertical speed while it rains
	rainW     int     // px: the drops' median blob width
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

type emittedPath struct {
	t0      time.Duration
	fy, fx  fit // in seconds from t0
	until   time.Duration
	floorPx float64
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
