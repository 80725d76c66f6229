package face_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/vision/face"
)

// Tight 92×112 crops (like an ID photo) that YuNet finds no face in until
// it is given a border: enrolled, and each template is the right person.
func TestTightCropsEnrol(t *testing.T) {
	d := data(t)
	o := testParsed(t, d)
	e, err := face.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tpl := func(p string) []float32 {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(d, "faces/orl", p))
		if err != nil {
			t.Fatal(err)
		}
		x, err := e.Template(b, p)
		if err != nil {
			t.Fatalf("%s refused: %v", p, err)
		}
		return x.Vec
	}
	// These four were refused "no face found" before the padded retry.
	for _, c := range []struct{ tight, same, other string }{
		{"s10/5.pgm", "s10/1.pgm", "s5/1.pgm"},
		{"s10/9.pgm", "s10/2.pgm", "s6/1.pgm"},
		{"s5/9.pgm", "s5/1.pgm", "s10/1.pgm"},
		{"s6/9.pgm", "s6/1.pgm", "s5/1.pgm"},
	} {
		v := tpl(c.tight)
		same, other := face.Cosine(v, tpl(c.same)), face.Cosine(v, tpl(c.other))
		if same < o.Threshold || other >= o.Threshold {
			t.Errorf("%s: cosine %.2f to %s (same person), %.2f to %s: not the right person", c.tight, same, c.same, other, c.other)
		}
	}
	// Something with no face is still refused, padded or not.
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 92, 112))
	for i := range img.Pix {
		img.Pix[i] = uint8(i % 251)
	}
	_ = jpeg.Encode(&b, img, nil)
	if _, err := e.Template(b.Bytes(), "noise.jpg"); err == nil || !strings.Contains(err.Error(), "no face") {
		t.Errorf("noise enrolled: %v", err)
	}
}
