package cv

import (
	"github.com/smartcommunity/warden/edge/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func sharedData(t *testing.T) string { return testenv.SharedData(t) }

func TestLoadErrors(t *testing.T) {
	d := sharedData(t)
	bad := filepath.Join(t.TempDir(), "corrupt.onnx")
	os.WriteFile(bad, []byte("not a model"), 0o600)
	for _, m := range []string{
		filepath.Join(d, "models/face_detection_yunet_2021dec.UNSUPPORTED-on-opencv4.6.onnx"),
		filepath.Join(d, "models/missing.onnx"),
		bad,
	} {
		if y, err := NewYuNet(m, 0.8, 0.3); err == nil {
			y.Close()
			t.Errorf("NewYuNet(%s) loaded", m)
		} else if !strings.Contains(err.Error(), filepath.Base(m)) {
			t.Errorf("error does not name the model: %v", err)
		}
		if s, err := NewSFace(m, Input{}); err == nil {
			s.Close()
			t.Errorf("NewSFace(%s) loaded", m)
		}
	}
}

func TestDetectAlignEmbed(t *testing.T) {
	d := sharedData(t)
	y, err := NewYuNet(filepath.Join(d, "models/face_detection_yunet_2022mar.onnx"), 0.8, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	s, err := NewSFace(filepath.Join(d, "models/face_embed_112_fr_feature.onnx"), ArcFaceInput)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img := gocv.IMRead(filepath.Join(d, "faces/london/neutral_front/001_03.jpg"), gocv.IMReadColor)
	defer img.Close()
	faces, err := y.Detect(img, 10)
	if err != nil || len(faces) != 1 {
		t.Fatalf("faces %d, err %v", len(faces), err)
	}
	crop, err := s.Align(img, faces[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Feature(crop)
	if err != nil || len(f) < 128 {
		t.Fatalf("feature len %d err %v", len(f), err)
	}
	l, err := NewLBPH()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if lab, _, err := l.Predict(make([]byte, 64), 8, 8); err != nil || lab != -1 {
		t.Fatalf("untrained predict %d %v", lab, err)
	}
	a, b := make([]byte, 64*64), make([]byte, 64*64)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if err := l.Train([][]byte{a, b}, []int32{1, 2}, 64, 64); err != nil {
		t.Fatal(err)
	}
	if lab, _, err := l.Predict(b, 64, 64); err != nil || lab != 2 {
		t.Fatalf("predict %d %v", lab, err)
	}
}
