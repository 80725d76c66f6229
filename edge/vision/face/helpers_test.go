package face_test

import (
	"os"
	"path/filepath"
	"testing"
)

// data returns ../shared/data relative to the module root, or skips.
func data(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(d, "models", "face_embed_112_fr_feature.onnx")); err != nil {
		t.Skipf("face test data is absent (%s): %v", d, err)
	}
	return d
}

func testOptions(d string) map[string]any {
	return map[string]any{
		"detector_model":   filepath.Join(d, "models/face_detection_yunet_2022mar.onnx"),
		"recognizer_model": filepath.Join(d, "models/face_embed_112_fr_feature.onnx"),
		"recognizer_input": "arcface",
	}
}
