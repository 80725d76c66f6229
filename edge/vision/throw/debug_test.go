package throw

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDebugClip runs one throwsim clip named by THROW_DEBUG_CLIP (its .json)
// and logs the tracks; for tuning only.
func TestDebugClip(t *testing.T) {
	p := os.Getenv("THROW_DEBUG_CLIP")
	if p == "" {
		t.Skip("THROW_DEBUG_CLIP not set")
	}
	var tr struct {
		Facade       Facade
		FloorHeightM float64 `json:"floor_height_m"`
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	o := Defaults()
	o.Facade = tr.Facade
	d := NewDetector(o, nil)
	// THROW_DEBUG_WIN="x0,x1,t0,t1,y0,y1" (px, s, px): print, at the end, the last
	// state of every track with a point in that window
	var win [6]float64
	fmt.Sscanf(os.Getenv("THROW_DEBUG_WIN"), "%g,%g,%g,%g,%g,%g", &win[0], &win[1], &win[2], &win[3], &win[4], &win[5])
	last := map[int][]obs{}
	whys := map[int]string{}
	d.debug = func(tr *track, why string) {
		last[tr.id] = append([]obs(nil), tr.pts...)
		whys[tr.id] = why
		if len(tr.pts) >= 5 && win[1] == 0 {
			t.Logf("track %d n=%d y %.0f..%.0f t %v..%v: %s", tr.id, len(tr.pts), tr.pts[0].y, tr.pts[len(tr.pts)-1].y, tr.pts[0].t, tr.pts[len(tr.pts)-1].t, why)
		}
	}
	hits := runClip(t, d, strings.TrimSuffix(p, ".json")+".mp4")
	for _, id := range slices.Sorted(maps.Keys(last)) {
		pts := last[id]
		in := false
		for _, p := range pts {
			in = in || (p.x >= win[0] && p.x <= win[1] && p.t.Seconds() >= win[2] && p.t.Seconds() <= win[3] && p.y >= win[4] && p.y <= win[5])
		}
		if !in {
			continue
		}
		t.Logf("track %d (%s):", id, whys[id])
		for _, p := range pts {
			t.Logf("   %v x %.1f y %.1f w %d h %d", p.t, p.x, p.y, p.w, p.h)
		}
	}
	t.Logf("stats %+v hits %d", d.Stats, len(hits))
}
