package videoeval

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision/face"
)

func TestApartKeepsPeopleApart(t *testing.T) {
	var items []Item
	for _, p := range strings.Split("aaaaabbbcc", "") {
		items = append(items, Item{Person: p})
	}
	for seed := range uint64(50) {
		out, err := apart(items, rand.New(rand.NewPCG(seed, 1)))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, it := range out {
			got = append(got, it.Person)
			if i > 0 && it.Person == out[i-1].Person {
				t.Fatalf("seed %d: %v has %s twice in a row", seed, got, it.Person)
			}
		}
		if len(out) != len(items) {
			t.Fatalf("seed %d: %d visits out of %d", seed, len(out), len(items))
		}
	}
	if _, err := apart(append(items, Item{Person: "a"}, Item{Person: "a"}), rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("7 of 12 visits by one person: want an error, not a clip with them twice in a row")
	}
}

func TestScoreJudgesEachVisit(t *testing.T) {
	s := func(sec float64) time.Duration { return time.Duration(sec * float64(time.Second)) }
	visits := []Visit{
		{Item: Item{Person: "r1", Role: Probe}, Start: s(1), End: s(2)},
		{Item: Item{Person: "r2", Role: Probe}, Start: s(3), End: s(4)},
		{Item: Item{Person: "r1", Role: Probe}, Start: s(5), End: s(6)},
		{Item: Item{Person: "x", Role: Stranger}, Start: s(7), End: s(8)},
		{Item: Item{Person: "y", Role: Stranger}, Start: s(9), End: s(10)},
		{Item: Item{Person: "r2", Role: Probe}, Start: s(11), End: s(12)},
	}
	ev := func(sec float64, typ, person string) *event.Event {
		return &event.Event{Time: time.Unix(0, 0).Add(s(sec)), Type: typ, Data: map[string]any{"person_id": person}}
	}
	r := Result{Counts: map[Outcome]int{}}
	score(&r, visits, []*event.Event{
		ev(0.5, event.FaceUnknown, ""),       // before anyone: stray
		ev(1.4, event.FaceRecognized, "r1"),  // right
		ev(3.2, event.FaceRecognized, "r1"),  // r2 named r1
		ev(5.5, event.FaceUnknown, ""),       // r1 called unknown
		ev(7.5, event.FaceWatchlist, "r2"),   // stranger named
		ev(9.6, event.FaceUnknown, ""),       // stranger rejected
		ev(10.4, event.FaceUnknown, ""),      // in the gap after y: still y's
		ev(11.5, event.FaceRecognized, "r2"), // right
	})
	var got []string
	for _, v := range r.Visits {
		got = append(got, string(v.Outcome))
	}
	want := "correct wrong_person missed false_accept rejected correct"
	if strings.Join(got, " ") != want {
		t.Errorf("outcomes %v, want %s", got, want)
	}
	if r.Genuine != 4 || r.Strangers != 2 || r.Identification != 0.5 || r.FAR != 0.5 || r.Stray != 1 || r.Extra != 1 || r.Silent != 0 {
		t.Errorf("result %+v", r)
	}
}

// TestRecallThroughVideo is the gate's promise on held-out people: faces
// 90–160 px high, people 0.3–1 s apart, through the camera's analyze path
// with the default options. Neither set was used for tuning (see
// testdata/faceeval and docs/face.md).
func TestRecallThroughVideo(t *testing.T) {
	d := testenv.SharedData(t, "models/face_embed_112_fr_feature.onnx")
	cameratest.NeedFFmpeg(t)
	o := face.Defaults()
	o.DetectorModel = filepath.Join(d, "models/face_detection_yunet_2022mar.onnx")
	o.RecognizerModel = filepath.Join(d, "models/face_embed_112_fr_feature.onnx")
	o.RecognizerInput = "arcface"
	for _, c := range []struct {
		set     string
		renders int
		minID   float64
	}{{"orl-final", 1, 0.95}, {"large-final", 4, 0.98}} {
		t.Run(c.set, func(t *testing.T) {
			set, err := ReadManifest(filepath.Join("../../../../testdata/faceeval", c.set+".csv"), d)
			if err != nil {
				t.Fatal(err)
			}
			clip := DefaultClip()
			clip.Renders = c.renders
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			r, err := Run(ctx, set, Options{Face: o, Clip: clip, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: identification %.1f%% (%d/%d), false accepts %d/%d, silent %d, extra %d",
				c.set, 100*r.Identification, r.Counts[Correct], r.Genuine, r.Counts[FalseAccept], r.Strangers, r.Silent, r.Extra)
			for _, v := range r.Visits {
				if v.Outcome != Correct && v.Outcome != Rejected || len(v.Events) != 1 {
					t.Logf("  %s %s %s %d px %v", v.Outcome, v.Person, filepath.Base(v.Path), v.FacePx, v.Events)
				}
			}
			if r.Identification < c.minID {
				t.Errorf("identification %.1f%%, want ≥ %.0f%%", 100*r.Identification, 100*c.minID)
			}
			if r.FAR > 0.01 {
				t.Errorf("false accepts %.1f%%, want ≤ 1%%", 100*r.FAR)
			}
			if r.Extra > 0 {
				t.Errorf("%d visits gave more than one event, want one per visit", r.Extra)
			}
		})
	}
}

// A manifest that would make the score meaningless is refused with the
// file, the line where there is one, and the reason.
func TestReadManifestRefusesBadSets(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a1.jpg", "a2.jpg", "b1.jpg"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("jpeg"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct{ csv, want string }{
		"good":            {"person,role,path\n# a comment\na,enrol,a1.jpg\na,probe,a2.jpg\nb,stranger,b1.jpg\n", ""},
		"missing photo":   {"a,enrol,a1.jpg\na,probe,nope.jpg\n", "m.csv:2: stat"},
		"unknown role":    {"a,enrol,a1.jpg\na,visitor,a2.jpg\n", `m.csv:2: role "visitor"`},
		"probe unknown":   {"a,enrol,a1.jpg\nb,probe,b1.jpg\n", "probe of b, who has no enrol row"},
		"enrolled twice":  {"a,enrol,a1.jpg\na,stranger,a2.jpg\n", "stranger a is also enrolled"},
		"nobody enrolled": {"b,stranger,b1.jpg\n", "want enrol rows"},
		"nobody visits":   {"a,enrol,a1.jpg\n", "want enrol rows"},
		"two columns":     {"a,enrol\n", "wrong number of fields"},
	} {
		m := filepath.Join(dir, "m.csv")
		if err := os.WriteFile(m, []byte(c.csv), 0o600); err != nil {
			t.Fatal(err)
		}
		set, err := ReadManifest(m, dir)
		switch {
		case c.want == "" && (err != nil || len(set.Enrol["a"]) != 1 || len(set.Visits) != 2):
			t.Errorf("%s: %+v, %v", name, set, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one with %q", name, err, c.want)
		}
	}
}
