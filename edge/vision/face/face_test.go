package face_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision/face"
)

func TestParseOptionsStrict(t *testing.T) {
	if _, err := face.ParseOptions("detect.face", config.SectionOf(map[string]any{"treshold": 0.5})); err == nil || !strings.Contains(err.Error(), "treshold") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := face.ParseOptions("detect.face", config.SectionOf(map[string]any{"threshold": 2})); err == nil || !strings.Contains(err.Error(), "threshold") {
		t.Fatalf("bad threshold: %v", err)
	}
	if _, err := face.ParseOptions("detect.face", config.SectionOf(map[string]any{"min_face_px": "big"})); err == nil {
		t.Fatal("string min_face_px accepted")
	}
	o, err := face.ParseOptions("detect.face", config.SectionOf(map[string]any{"unknown_after_frames": 3}))
	if err != nil || o.UnknownAfterFrames != 3 || o.Threshold != face.DefaultThreshold {
		t.Fatalf("%+v %v", o, err)
	}
}

// A missing, corrupt or unsupported model fails the camera at start with an
// error naming the key and the file.
func TestFactoryLoadErrors(t *testing.T) {
	d := data(t)
	for key, file := range map[string]string{
		"detector_model":   "models/face_detection_yunet_2021dec.UNSUPPORTED-on-opencv4.6.onnx",
		"recognizer_model": "models/LICENSE.yunet-MIT",
	} {
		sec := testOptions(d)
		sec[key] = filepath.Join(d, file)
		_, err := face.New(config.Camera{ID: "cam", Detect: config.Detect{Face: config.SectionOf(sec)}})
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), filepath.Base(file)) {
			t.Errorf("%s=%s: %v", key, file, err)
		}
	}
	if det, err := face.New(config.Camera{ID: "cam"}); det != nil || err != nil {
		t.Fatalf("absent section: %v %v", det, err)
	}
}

// The fallbacks: Haar cascade detection and LBPH recognition.
func TestFallbackEngine(t *testing.T) {
	d := data(t)
	o := face.Defaults()
	o.Cascade = filepath.Join(d, "models/cascades/haarcascade_frontalface_default.xml")
	e, err := face.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Model() != "lbph" {
		t.Fatalf("model %s", e.Model())
	}
	r, err := face.Evaluate(e, o, face.EvalOptions{EnrollDir: filepath.Join(d, "faces/london/neutral_front"), TestDir: filepath.Join(d, "faces/london/smiling_front")})
	if err != nil {
		t.Fatal(err)
	}
	// Haar finds a second "face" in one London photo; enrolment must say so.
	if r.Probes != 6 || len(r.EnrolFailed) > 1 {
		t.Fatalf("probes %d, enrol failures %v", r.Probes, r.EnrolFailed)
	}
	for _, f := range r.EnrolFailed {
		if !strings.Contains(f, ".jpg: ") {
			t.Errorf("failure does not name the image: %s", f)
		}
	}
	// LBPH on YuNet-aligned ORL crops: the nearest person is mostly right.
	o.DetectorModel = filepath.Join(d, "models/face_detection_yunet_2022mar.onnx")
	o.MinFacePx = 20
	e2, err := face.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	r, err = face.Evaluate(e2, o, face.EvalOptions{Dir: filepath.Join(d, "faces/orl"), K: 5, Strangers: true, Thresholds: []float64{-10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LBPH ORL: nearest-person %.2f, at lbph_threshold %.2f / FAR %.2f", r.Sweep[0].Accuracy, r.Accuracy, r.FAR)
	if r.Sweep[0].Accuracy < 0.8 {
		t.Errorf("LBPH nearest-person accuracy %.2f < 0.8", r.Sweep[0].Accuracy)
	}
}

// The calibrated threshold on held-out data: London (enrol neutral, test
// smiling) must identify everyone; ORL strangers must not pass.
func TestEvaluateTargets(t *testing.T) {
	d := data(t)
	o := testParsed(t, d)
	o.MinFacePx = 20
	e, err := face.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := face.Evaluate(e, o, face.EvalOptions{EnrollDir: filepath.Join(d, "faces/london/neutral_front"), TestDir: filepath.Join(d, "faces/london/smiling_front")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accuracy < 0.98 {
		t.Errorf("London identification %.3f < 0.98", r.Accuracy)
	}
	r, err = face.Evaluate(e, o, face.EvalOptions{Dir: filepath.Join(d, "faces/orl"), K: 5, Strangers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ORL: accuracy %.3f FAR %.3f per face %v", r.Accuracy, r.FAR, r.PerFace)
	if r.Accuracy < 0.95 || r.FAR > 0.01 {
		t.Errorf("ORL identification %.3f (want >= 0.95), false accepts %.3f (want <= 0.01)", r.Accuracy, r.FAR)
	}
}
