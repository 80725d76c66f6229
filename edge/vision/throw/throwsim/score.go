package throwsim

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Alarm is one throw.detected event of a clip, in video time.
type Alarm struct {
	T     time.Duration
	Floor int
	X     float64
}

// Result is a clip's truth and what the detector said.
type Result struct {
	Truth  Truth
	Alarms []Alarm
}

// Report sums up an evaluation; throws count toward recall when they are at
// least MinSize px and fall at least two floors inside the frame.
type Report struct {
	MinSize                   int
	Clips, NegClips           int
	NegSeconds                float64
	Eligible, Detected        int
	Ineligible, IneligibleHit int
	FalseAlarms, FANeg        int
	OriginExact, OriginPM1    int
	Latencies                 []float64 // s, alarm minus completing the 2nd floor
	// During counts eligible throws by a distractor kind that overlapped
	// the fall ("none": no distractor did): [detected, eligible].
	During            map[string][2]int
	Misses, FalseList []string
}

// Score matches alarms to throws: an alarm belongs to a throw when it comes
// between its release and 1.5 s after it was last seen; each throw takes
// its first alarm, any other alarm is false.
func Score(rs []Result, minSize int) Report {
	rep := Report{MinSize: minSize, During: map[string][2]int{}}
	for _, r := range rs {
		rep.Clips++
		t := r.Truth
		dur := float64(t.Frames) / t.FPS
		if len(t.Throws) == 0 {
			rep.NegClips++
			rep.NegSeconds += dur
		}
		used := make([]bool, len(r.Alarms))
		for _, th := range t.Throws {
			lo := time.Duration(float64(th.ReleaseFrame) / t.FPS * float64(time.Second))
			hi := time.Duration((float64(th.LastFrame)/t.FPS + 1.5) * float64(time.Second))
			hit := -1
			for i, a := range r.Alarms {
				if !used[i] && a.T >= lo && a.T <= hi {
					hit = i
					break
				}
			}
			eligible := th.SizePx >= minSize && th.Frame2Floors >= 0
			if !eligible {
				rep.Ineligible++
				if hit >= 0 {
					rep.IneligibleHit++
					used[hit] = true
				}
				continue
			}
			rep.Eligible++
			kinds := map[string]bool{}
			for _, d := range t.Distractors {
				if d.StartFrame <= th.LastFrame && d.EndFrame >= th.ReleaseFrame {
					kinds[d.Kind] = true
				}
			}
			if len(kinds) == 0 {
				kinds["none"] = true
			}
			for k := range kinds {
				c := rep.During[k]
				c[1]++
				if hit >= 0 {
					c[0]++
				}
				rep.During[k] = c
			}
			if hit < 0 {
				rep.Misses = append(rep.Misses, fmt.Sprintf("%s (floor %d, %d px)", t.Clip, th.ReleaseFloor, th.SizePx))
				continue
			}
			used[hit] = true
			rep.Detected++
			a := r.Alarms[hit]
			d := a.Floor - th.ReleaseFloor
			if d == 0 {
				rep.OriginExact++
			}
			if d >= -1 && d <= 1 {
				rep.OriginPM1++
			}
			rep.Latencies = append(rep.Latencies, a.T.Seconds()-float64(th.Frame2Floors)/t.FPS)
		}
		for i, a := range r.Alarms {
			if used[i] {
				continue
			}
			rep.FalseAlarms++
			if len(t.Throws) == 0 {
				rep.FANeg++
			}
			var ds []string
			for _, d := range t.Distractors {
				ds = append(ds, d.Kind)
			}
			rep.FalseList = append(rep.FalseList, fmt.Sprintf("%s at %v floor %d [%s]", t.Clip, a.T, a.Floor, strings.Join(ds, ",")))
		}
	}
	return rep
}

func pct(a, b int) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(a)/float64(b), a, b)
}

// Markdown is the results table of docs/throw.md.
func (r Report) Markdown() string {
	var b strings.Builder
	lat := append([]float64(nil), r.Latencies...)
	sort.Float64s(lat)
	q := func(p float64) string {
		if len(lat) == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f s", lat[int(math.Min(float64(len(lat)-1), math.Floor(p*float64(len(lat)))))])
	}
	within := 0
	for _, l := range lat {
		if l <= 1 {
			within++
		}
	}
	fph := "n/a"
	if r.NegSeconds > 0 {
		fph = fmt.Sprintf("%.1f", float64(r.FANeg)/(r.NegSeconds/3600))
	}
	faClip := "n/a"
	if r.NegClips > 0 {
		faClip = fmt.Sprintf("%.3f", float64(r.FANeg)/float64(r.NegClips))
	}
	fmt.Fprintf(&b, "| metric | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| clips (distractor-only) | %d (%d, %.0f s) |\n", r.Clips, r.NegClips, r.NegSeconds)
	fmt.Fprintf(&b, "| recall, objects ≥ %d px falling ≥ 2 floors | %s |\n", r.MinSize, pct(r.Detected, r.Eligible))
	var kinds []string
	for k := range r.During {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		c := r.During[k]
		fmt.Fprintf(&b, "| recall with %s during the fall | %s |\n", k, pct(c[0], c[1]))
	}
	fmt.Fprintf(&b, "| detected, smaller or shorter falls (not counted) | %d/%d |\n", r.IneligibleHit, r.Ineligible)
	fmt.Fprintf(&b, "| false alarms, all clips | %d |\n", r.FalseAlarms)
	fmt.Fprintf(&b, "| false alarms per distractor-only clip | %s |\n", faClip)
	fmt.Fprintf(&b, "| false alarms per hour of distractor-only video | %s |\n", fph)
	fmt.Fprintf(&b, "| origin floor exact | %s |\n", pct(r.OriginExact, r.Detected))
	fmt.Fprintf(&b, "| origin floor ±1 | %s |\n", pct(r.OriginPM1, r.Detected))
	fmt.Fprintf(&b, "| latency after 2nd floor: median / p95 / max | %s / %s / %s |\n", q(0.5), q(0.95), q(1))
	fmt.Fprintf(&b, "| alarms within 1 s of the 2nd floor | %s |\n", pct(within, len(lat)))
	return b.String()
}
