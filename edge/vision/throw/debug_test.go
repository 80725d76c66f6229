package throw

import (
	"encoding/json"
	"os"
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
	d.debug = func(tr *track, why string) {
		if len(tr.pts) >= 5 {
			t.Logf("track %d n=%d y %.0f..%.0f t %v..%v: %s", tr.id, len(tr.pts), tr.pts[0].y, tr.pts[len(tr.pts)-1].y, tr.pts[0].t, tr.pts[len(tr.pts)-1].t, why)
		}
	}
	hits := runClip(t, d, strings.TrimSuffix(p, ".json")+".mp4")
	t.Logf("stats %+v hits %d", d.Stats, len(hits))
}
