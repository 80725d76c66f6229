package face_test

import (
	"github.com/smartcommunity/warden/edge/testenv"
	"path/filepath"
	"testing"
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
