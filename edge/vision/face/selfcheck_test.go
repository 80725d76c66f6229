package face_test

import (
	"github.com/smartcommunity/warden/edge/config"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/vision/face"
)

// The test embedder fed the wrong way (sface input for an ArcFace-style
// model) scores everybody alike: the engine refuses to start rather than
// match strangers. Fed the right way it passes, with room to spare.
func TestSelfCheckRefusesADegenerateRecogniser(t *testing.T) {
	d := data(t)
	o := testParsed(t, d)
	e, err := face.NewEngine(o)
	if err != nil {
		t.Fatalf("the right input mode is refused: %v", err)
	}
	c := e.SelfCheck()
	e.Close()
	if c == nil || len(c.Same) != 3 || len(c.Diff) != 12 || c.MaxDiff() >= o.Threshold || c.MinSame() <= c.MaxDiff() {
		t.Fatalf("self-check with arcface input: %+v", c)
	}
	t.Logf("arcface input: same person ≥ %.2f, different people ≤ %.2f (threshold %.2f)", c.MinSame(), c.MaxDiff(), o.Threshold)

	m := testOptions(d)
	m["recognizer_input"] = "sface"
	wrong, err := face.ParseOptions("detect.face", config.SectionOf(m))
	if err != nil {
		t.Fatal(err)
	}
	e, err = face.NewEngine(wrong)
	if err == nil {
		e.Close()
		t.Fatal("the wrong input mode started: every stranger would match")
	}
	if !strings.Contains(err.Error(), "self-check failed") || !strings.Contains(err.Error(), "recognizer_input (sface)") {
		t.Errorf("error does not name the cause: %v", err)
	}
	t.Logf("sface input refused: %v", err)
}
