package face_test

import (
	"path/filepath"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// data returns ../shared/data, or skips when the face models are absent.
func data(t testing.TB) string {
	t.Helper()
	return testenv.SharedData(t, "models/face_embed_112_fr_feature.onnx")
}

func testOptions(d string) map[string]any {
	return map[string]any{
		"detector_model":   filepath.Join(d, "models/face_detection_yunet_2022mar.onnx"),
		"recognizer_model": filepath.Join(d, "models/face_embed_112_fr_feature.onnx"),
		"recognizer_input": "arcface",
	}
}

// testParsed is testOptions decoded, as a camera's detect.face would be.
func testParsed(t testing.TB, d string) face.Options {
	t.Helper()
	o, err := face.ParseOptions("detect.face", config.SectionOf(testOptions(d)))
	if err != nil {
		t.Fatal(err)
	}
	return o
}
