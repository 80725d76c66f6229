package throw

import (
	"math"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
)

// A facade filmed from the ground: 20 floors, the roof half as wide as the
// ground edge, so the top floor is far shorter than the lowest.
func lookingUp() map[string]any {
	return map[string]any{"corners": []any{[]any{420, 40}, []any{860, 40}, []any{1140, 680}, []any{140, 680}}, "floors": 20, "lowest_floor": 1}
}

func TestPerspectiveOptions(t *testing.T) {
	o, err := ParseOptions("cameras[0].detect.throw", config.SectionOf(map[string]any{"facade": lookingUp()}))
	if err != nil {
		t.Fatal(err)
	}
	fc := o.Facade
	p := fc.plane()
	if p.identity() || fc.Corners == nil {
		t.Fatal("corners gave the frontal plane")
	}
	// the corners land on the facade's rectangle and come back
	for i, c := range fc.Corners {
		want := [][2]float64{{fc.LeftX, fc.TopY}, {fc.RightX, fc.TopY}, {fc.RightX, fc.BottomY}, {fc.LeftX, fc.BottomY}}[i]
		x, y := p.toFacade(c[0], c[1])
		if math.Abs(x-want[0]) > 1e-6 || math.Abs(y-want[1]) > 1e-6 {
			t.Errorf("corner %d %v -> (%.3f, %.3f), want %v", i, c, x, y, want)
		}
		u, v := p.toImage(x, y)
		if math.Abs(u-c[0]) > 1e-6 || math.Abs(v-c[1]) > 1e-6 {
			t.Errorf("corner %d back to (%.3f, %.3f)", i, u, v)
		}
	}
	// floors are even in facade px, not in the image: the upper ten
	// floors take far less of the image than the lower ten
	midX := (fc.LeftX + fc.RightX) / 2
	_, y10 := p.toImage(midX, fc.BottomY-10*fc.FloorPx())
	if y10 > 300 {
		t.Errorf("the 10th floor line is at image row %.0f: perspective not applied", y10)
	}
	_, yTop := p.toImage(midX, fc.TopY+fc.FloorPx())
	_, yLow := p.toImage(midX, fc.BottomY-fc.FloorPx())
	top, low := yTop-40, 680-yLow
	if r := top / low; r > 0.6 {
		t.Errorf("top floor %.1f px, lowest %.1f px: ratio %.2f, want well under 1", top, low, r)
	}
	// a blob near the roof is seen shorter than one near the ground
	_, syTop := p.scale(640, 60)
	_, syLow := p.scale(640, 660)
	if syTop < 2*syLow {
		t.Errorf("vertical scale near the roof %.2f, near the ground %.2f: want the roof's far larger", syTop, syLow)
	}
	if got := fc.FloorAt(fc.TopY + 1); got != 20 {
		t.Errorf("floor under the roof = %d", got)
	}
}

func TestFloorLines(t *testing.T) {
	// a frontal facade whose lowest floor (a lobby) is twice as tall
	m := facadeMap()
	m["floors"] = 3
	m["top_y"], m["bottom_y"] = 300, 660
	m["floor_lines_y"] = []any{516, 408} // between floors, bottom to top
	o, err := ParseOptions("c", config.SectionOf(map[string]any{"facade": m}))
	if err != nil {
		t.Fatal(err)
	}
	for y, want := range map[float64]int{650: 1, 520: 1, 510: 2, 410: 2, 400: 3, 301: 3} {
		if got := o.Facade.FloorAt(y); got != want {
			t.Errorf("row %v: floor %d, want %d", y, got, want)
		}
	}
	if top, bottom := o.Facade.Band(1); top != 516 || bottom != 660 {
		t.Errorf("band of floor 1: %v..%v", top, bottom)
	}
}

// lines are 19 floor lines starting with first, then evenly up the facade.
func lines(first ...any) []any {
	out := append([]any(nil), first...)
	for y := 600; len(out) < 19; y -= 25 {
		out = append(out, y)
	}
	return out
}

func TestPerspectiveOptionsRefused(t *testing.T) {
	with := func(k string, v any) map[string]any {
		m := lookingUp()
		m[k] = v
		return map[string]any{"facade": m}
	}
	cases := map[string]map[string]any{
		"facade.top_y: give corners or the rectangle":  with("top_y", 40),
		"facade.corners: 3 points":                     with("corners", []any{[]any{420, 40}, []any{860, 40}, []any{1140, 680}}),
		"facade.corners[1]: [860] is not [x, y]":       with("corners", []any{[]any{420, 40}, []any{860}, []any{1140, 680}, []any{140, 680}}),
		"facade.corners[1]: roof-right":                with("corners", []any{[]any{860, 40}, []any{420, 40}, []any{1140, 680}, []any{140, 680}}),
		"facade.corners[3]: ground-left":               with("corners", []any{[]any{420, 700}, []any{860, 40}, []any{1140, 680}, []any{140, 680}}),
		"facade.floor_lines_y: 5 lines for 20 floors":  with("floor_lines_y", []any{600, 500, 400, 300, 200}),
		"facade.floor_lines_y[1]: 670 is not above":    with("floor_lines_y", lines(650, 670)),
		"facade.floor_lines_y[0]: 900 is outside":      with("floor_lines_y", lines(900)),
		"facade.corners: [[420 40] [860 40] [500 300]": with("corners", []any{[]any{420, 40}, []any{860, 40}, []any{500, 300}, []any{140, 680}}),
	}
	for want, m := range cases {
		_, err := ParseOptions("cam", config.SectionOf(m))
		if err == nil || !strings.Contains(err.Error(), "cam."+want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}
