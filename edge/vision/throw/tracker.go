package throw

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// tracker follows blobs from frame to frame, a Kalman filter per axis;
// ended tracks are kept a while, as the possible start of a later fall.
type tracker struct {
	tracks []*track
	lost   []*track // ended tracks, newest last: may be the start of a later fall
	nextID int
}

type track struct {
	id      int
	kx, ky  axis
	pts     []obs
	misses  int
	last    time.Duration
	emitted bool
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

// lose keeps an ended track that may be the observed start of a later fall.
func (k *tracker) lose(tr *track) {
	if tr.emitted || len(tr.pts) < 2 {
		return
	}
	keep := k.lost[:0]
	for _, l := range k.lost {
		if tr.last-l.last <= lostMemory {
			keep = append(keep, l)
		}
	}
	k.lost = append(keep, tr)
	if len(k.lost) > maxLost {
		k.lost = k.lost[len(k.lost)-maxLost:]
	}
}

// smallArea is the median blob area of a track of at least 5 points, or 0.
func (tr *track) smallArea() int {
	if len(tr.pts) < 5 {
		return 0
	}
	return median(tr.pts[max(0, len(tr.pts)-8):], func(p obs) int { return p.w * p.h })
}
