package throw_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/throw"
	"github.com/smartcommunity/warden/edge/vision/throw/throwsim"
)

// detect runs a fresh detector over a generated clip, PTS = frame/fps.
func detect(t *testing.T, tr throwsim.Truth) []throwsim.Alarm {
	t.Helper()
	a, _ := detectStats(t, tr)
	return a
}

func detectStats(t *testing.T, tr throwsim.Truth) ([]throwsim.Alarm, throw.Stats) {
	t.Helper()
	o, err := throw.ParseOptions("detect.throw", tr.ThrowSection())
	if err != nil {
		t.Fatal(err)
	}
	d := throw.NewDetector(o, nil)
	defer d.Close()
	vc, err := gocv.VideoCaptureFile(tr.Clip)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	var out []throwsim.Alarm
	for i := 0; vc.Read(&m) && !m.Empty(); i++ {
		pts := time.Duration(float64(i) / tr.FPS * float64(time.Second))
		for _, det := range d.Detect(vision.Frame{Mat: m, PTS: pts, Seq: i}) {
			if det.Type != "throw.detected" {
				t.Errorf("type %q", det.Type)
			}
			org := det.Data["origin"].(map[string]any)
			out = append(out, throwsim.Alarm{T: pts, Floor: org["floor"].(int), X: org["x"].(float64)})
		}
	}
	return out, d.Stats
}

// checkScore scores the results and asserts at least minEligible eligible
// throws, recall of at least num/den, no false alarm and the origin floor
// ±1 for every detection; it returns the report.
func checkScore(t *testing.T, rs []throwsim.Result, minEligible, num, den int) throwsim.Report {
	t.Helper()
	rep := throwsim.Score(rs, 5)
	t.Logf("\n%s", rep.Markdown())
	if rep.Eligible < minEligible {
		t.Fatalf("only %d eligible throws generated", rep.Eligible)
	}
	if rep.Detected*den < rep.Eligible*num {
		t.Errorf("recall %d/%d; missed %v", rep.Detected, rep.Eligible, rep.Misses)
	}
	if rep.FalseAlarms != 0 {
		t.Errorf("false alarms: %v", rep.FalseList)
	}
	if rep.OriginPM1 < rep.Detected {
		t.Errorf("origin floor ±1 in %d of %d", rep.OriginPM1, rep.Detected)
	}
	return rep
}

func smallOptions() throwsim.Options {
	o := throwsim.DefaultOptions()
	o.W, o.H, o.Seconds = 640, 360, 5
	o.Floors = [2]int{6, 12}
	o.Size = [2]int{5, 12}
	return o
}

// TestGeneratedThrows: fixed seeds, so the clips are the same on every run.
func TestGeneratedThrows(t *testing.T) {
	dir := t.TempDir()
	o := smallOptions()
	o.NegFrac = 0
	truths, err := throwsim.Generate(dir, 42, 6, o)
	if err != nil {
		t.Fatal(err)
	}
	var rs []throwsim.Result
	for _, tr := range truths {
		rs = append(rs, throwsim.Result{Truth: tr, Alarms: detect(t, tr)})
	}
	rep := checkScore(t, rs, 5, 8, 10)
	// target: within 1 s of the 2nd floor (all are, at most 0.24 s, since
	// tracks are stitched); the margin keeps the test from being brittle
	late := 0
	for _, l := range rep.Latencies {
		if l > 1 {
			late++
		}
		if l > 2 {
			t.Errorf("latency %.2f s after the 2nd floor", l)
		}
	}
	if late*5 > len(rep.Latencies) {
		t.Errorf("%d of %d alarms later than 1 s after the 2nd floor", late, len(rep.Latencies))
	}
}

// TestGeneratedDistractors: one distractor-only clip per kind, no alarm.
func TestGeneratedDistractors(t *testing.T) {
	dir := t.TempDir()
	for i, kind := range throwsim.DistractorKinds {
		o := smallOptions()
		o.Seconds = 4
		o.NegFrac = 1
		o.Distractors = []string{kind}
		tr, err := throwsim.One(dir, kind, uint64(100+i), o)
		if err != nil {
			t.Fatal(err)
		}
		if got := detect(t, tr); len(got) != 0 {
			t.Errorf("%s: %d false alarms: %+v", kind, len(got), got)
		}
	}
}

func TestTruthRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := smallOptions()
	o.Seconds, o.NegFrac = 2, 0
	_, err := throwsim.One(dir, "rt", 5, o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := throwsim.ReadTruth(filepath.Join(dir, "rt.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Clip != filepath.Join(dir, "rt.mp4") {
		t.Errorf("clip %q", back.Clip)
	}
	if len(back.Throws) != 1 || back.Throws[0].ReleaseFloor < 3 {
		t.Errorf("throws %+v", back.Throws)
	}
}

// TestGeneratedThrowsInWeather: throws with rain, snow or an exposure ramp
// overlapping the fall are still reported (the rain guard holds only
// tracks that look like hopping between drops; a gain change does not
// suspend detection). Fixed seeds; shake and birds have their own test.
func TestGeneratedThrowsInWeather(t *testing.T) {
	dir := t.TempDir()
	o := smallOptions()
	o.NegFrac, o.HardRate = 0, 1
	o.HardKinds = []string{"rain", "snow", "exposure"}
	truths, err := throwsim.Generate(dir, 7, 6, o)
	if err != nil {
		t.Fatal(err)
	}
	var rs []throwsim.Result
	for _, tr := range truths {
		during := false
		for _, d := range tr.Distractors {
			during = during || d.DuringThrow
		}
		if !during {
			t.Fatalf("%s: no distractor during the throw: %+v", tr.Clip, tr.Distractors)
		}
		rs = append(rs, throwsim.Result{Truth: tr, Alarms: detect(t, tr)})
	}
	checkScore(t, rs, 4, 3, 4)
}

// TestGeneratedThrowsDuringShakeAndBirds: a camera shake or a bird during
// the fall. Shaken frames are followed (phase correlation), not skipped:
// every shake clip must show shaken frames and no suspension.
func TestGeneratedThrowsDuringShakeAndBirds(t *testing.T) {
	dir := t.TempDir()
	o := smallOptions()
	o.NegFrac, o.HardRate = 0, 1
	o.HardKinds = []string{"shake", "bird"}
	truths, err := throwsim.Generate(dir, 11, 6, o)
	if err != nil {
		t.Fatal(err)
	}
	var rs []throwsim.Result
	shakes := 0
	for _, tr := range truths {
		alarms, st := detectStats(t, tr)
		for _, d := range tr.Distractors {
			if d.Kind == "shake" && d.DuringThrow {
				shakes++
				if st.ShakeFrames == 0 || st.Suspensions != 0 {
					t.Errorf("%s: shake %d-%d: %d frames followed, %d suspensions", tr.Clip, d.StartFrame, d.EndFrame, st.ShakeFrames, st.Suspensions)
				}
			}
		}
		rs = append(rs, throwsim.Result{Truth: tr, Alarms: alarms})
	}
	if shakes < 2 {
		t.Fatalf("seed gives %d shakes during a fall", shakes)
	}
	checkScore(t, rs, 4, 5, 6)
}

// TestFallThroughALongShake: two 720p clips of tuning seed 4701 (each
// clip's own seed), with the camera shaking for about a second during the
// fall. In the first, phase correlation reads half a pixel with the camera
// at rest (rows of windows) and one frame mid-shake lands near rest; in the
// second, clouds drift while the camera shakes. Both used to end in a
// suspension that lost the fall (missed; 1.04 s late).
func TestFallThroughALongShake(t *testing.T) {
	dir := t.TempDir()
	o := throwsim.DefaultOptions()
	o.Size = [2]int{5, 14}
	o.NegFrac, o.HardRate = 0.1, 1
	o.HardKinds = []string{"shake"}
	for _, c := range []struct {
		clip   int
		clouds bool
	}{{4, false}, {21, true}} {
		tr, err := throwsim.One(dir, fmt.Sprintf("shake-%d", c.clip), 4701*1000003+uint64(c.clip), o)
		if err != nil {
			t.Fatal(err)
		}
		var shake *throwsim.Distractor
		clouds := false
		for i, d := range tr.Distractors {
			if d.Kind == "shake" && d.DuringThrow {
				shake = &tr.Distractors[i]
			}
			clouds = clouds || d.Kind == "clouds"
		}
		if len(tr.Throws) != 1 || shake == nil || shake.EndFrame-shake.StartFrame < 20 || clouds != c.clouds {
			t.Fatalf("clip %d is not what the test needs: %+v %+v", c.clip, tr.Throws, tr.Distractors)
		}
		alarms, st := detectStats(t, tr)
		th := tr.Throws[0]
		if len(alarms) != 1 {
			t.Errorf("clip %d: %d alarms (%+v), want 1; stats %+v", c.clip, len(alarms), alarms, st)
			continue
		}
		if lat := alarms[0].T.Seconds() - float64(th.Frame2Floors)/tr.FPS; lat > 1 {
			t.Errorf("clip %d: alarm %.2f s after the 2nd floor", c.clip, lat)
		}
		if d := alarms[0].Floor - th.ReleaseFloor; d < -1 || d > 1 {
			t.Errorf("clip %d: floor %d, released from %d", c.clip, alarms[0].Floor, th.ReleaseFloor)
		}
		// followed throughout, and the shake ends with it (the hold is 0.5 s)
		if shaken := shake.EndFrame - shake.StartFrame + 1; st.Suspensions != 0 || st.ShakeFrames > shaken+int(0.5*tr.FPS) {
			t.Errorf("clip %d: %d suspensions, %d frames followed as shaken for a shake of %d", c.clip, st.Suspensions, st.ShakeFrames, shaken)
		}
	}
}

// TestPerspectiveThrows: a camera on the ground looking up at a 14–18
// floor facade, calibrated by its four image corners (what the truth
// gives, as an installer would click them), by day and by infrared at
// night with headlights. Throws are found with the origin floor right;
// the night's distractors raise nothing. Fixed seeds.
func TestPerspectiveThrows(t *testing.T) {
	for _, night := range []bool{false, true} {
		t.Run(fmt.Sprintf("night=%v", night), func(t *testing.T) {
			o := smallOptions()
			o.Floors = [2]int{14, 18}
			o.Perspective, o.Night, o.NegFrac = true, night, 0.34
			truths, err := throwsim.Generate(t.TempDir(), 61, 6, o)
			if err != nil {
				t.Fatal(err)
			}
			var rs []throwsim.Result
			for _, tr := range truths {
				if tr.Corners == nil {
					t.Fatal("perspective clip without corners")
				}
				rs = append(rs, throwsim.Result{Truth: tr, Alarms: detect(t, tr)})
			}
			rep := checkScore(t, rs, 3, 3, 4)
			if rep.NegClips == 0 {
				t.Error("no distractor-only clip generated")
			}
			if rep.OriginExact*4 < rep.Detected*3 {
				t.Errorf("origin floor exact in %d of %d", rep.OriginExact, rep.Detected)
			}
		})
	}
}
