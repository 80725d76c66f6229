package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
)

// warden enroll --config X fills the gallery; warden analyze --config X
// then recognises against it without gallery_db being set by hand, and
// says so; --no-gallery calls everyone unknown.
func TestAnalyzeUsesTheConfiguredGallery(t *testing.T) {
	d := sharedData(t)
	dir := t.TempDir()
	video := filepath.Join(dir, "gate.mp4")
	cameratest.Slideshow(t, video, []string{
		filepath.Join(d, "faces/london/smiling_front/001_08.jpg"),
		filepath.Join(d, "faces/london/smiling_front/002_08.jpg"),
	}, 3, 3)
	key := filepath.Join(dir, "face.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	models, _ := filepath.Abs("../../models")
	cfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: {id: gw-analyze, data_dir: %q}
cameras:
  - id: gate
    url: %q
    detect:
      fps: 5
      face: {detector_model: %q, recognizer_model: %q, recognizer_input: arcface, key_file: %q, min_face_px: 40}
`, filepath.Join(dir, "data"), video, filepath.Join(models, "face_detection_yunet_2022mar.onnx"),
		filepath.Join(d, "models/face_embed_112_fr_feature.onnx"), key)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := wardenBinary(t)
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		var o, e bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("warden %s: %v\n%s", strings.Join(args, " "), err, e.String())
		}
		return o.String(), e.String()
	}
	// enroll --check measures and enrols nothing: a good photo, a tight
	// 92×112 crop, a photo without a face.
	noise := filepath.Join(dir, "wall.jpg")
	if err := os.WriteFile(noise, wallJPEG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	var co bytes.Buffer
	chk := exec.Command(bin, "enroll", "--config", cfg, "--check", filepath.Join(d, "faces/london/neutral_front/001_03.jpg"),
		filepath.Join(d, "faces/orl/s10/5.pgm"), noise)
	chk.Stdout, chk.Stderr = &co, &co
	err := chk.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("enroll --check with a refused photo: %v, want exit 1\n%s", err, co.String())
	}
	lines := strings.Split(strings.TrimSpace(co.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "001_03.jpg") || !strings.Contains(lines[1], " ok ") ||
		!strings.Contains(lines[2], "tight crop") || !strings.Contains(lines[3], "refused") || !strings.Contains(lines[3], "no face found") {
		t.Errorf("enroll --check output:\n%s", co.String())
	}
	// Before any enrolment (the check enrolled nothing): no gallery file, said so.
	if _, e := run("analyze", "--config", cfg, "--camera", "gate", video); !strings.Contains(e, "gallery: none at") {
		t.Errorf("analyze without a gallery does not say so:\n%s", e)
	}
	run("enroll", "--config", cfg, "--person", "r-001", "--name", "Resident One", filepath.Join(d, "faces/london/neutral_front/001_03.jpg"))
	// The same woman smiling, enrolled as someone else, would poison the
	// gallery: refused, naming r-001.
	var eo bytes.Buffer
	dup := exec.Command(bin, "enroll", "--config", cfg, "--person", "r-999", filepath.Join(d, "faces/london/smiling_front/001_08.jpg"))
	dup.Stdout, dup.Stderr = &eo, &eo
	if err := dup.Run(); err == nil || !strings.Contains(eo.String(), "r-001") || !strings.Contains(eo.String(), "looks like another enrolled person") {
		t.Errorf("a photo of r-001 enrolled as r-999: %v\n%s", err, eo.String())
	}
	t.Logf("refused: %s", strings.TrimSpace(eo.String()))

	types := func(out string) map[string][]string {
		m := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Type string
				Data map[string]any
			}
			if json.Unmarshal([]byte(line), &ev) == nil {
				m[ev.Type] = append(m[ev.Type], fmt.Sprint(ev.Data["person_id"]))
			}
		}
		return m
	}
	out, e := run("analyze", "--config", cfg, "--camera", "gate", video)
	if !strings.Contains(e, "gallery: 1 persons, 1 templates from "+filepath.Join(dir, "data", "warden.db")) {
		t.Errorf("progress does not say what gallery was loaded:\n%s", e)
	}
	// what the detectors did, for the installer: frames and faces seen
	if m := regexp.MustCompile(`(\d+) frames analysed, [\d.]+ ms per frame in the detectors; (\d+) faces, [\d.]+ ms per face`).FindStringSubmatch(e); m == nil || m[1] == "0" || m[2] == "0" {
		t.Errorf("analyze does not say what its detectors did:\n%s", e)
	}
	got := types(out)
	if strings.Join(got["face.recognized"], ",") != "r-001" || len(got["face.unknown"]) != 1 {
		t.Errorf("with the configured gallery: %v, want r-001 recognised and one unknown", got)
	}
	out, e = run("analyze", "--config", cfg, "--camera", "gate", "--no-gallery", video)
	if got := types(out); len(got["face.recognized"]) != 0 || len(got["face.unknown"]) != 2 || !strings.Contains(e, "--no-gallery") {
		t.Errorf("--no-gallery: %v\n%s", got, e)
	}
}

// wallJPEG is a textured 200×200 picture with no face in it.
func wallJPEG(t *testing.T) []byte {
	img := image.NewGray(image.Rect(0, 0, 200, 200))
	for i := range img.Pix {
		img.Pix[i] = uint8((i*7)%200 + 20)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
