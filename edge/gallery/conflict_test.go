package gallery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/gallery"
)

func TestCheckConflicts(t *testing.T) {
	g, _, _, _ := open(t)
	tp := func(src string, v ...float32) gallery.Template {
		return gallery.Template{Model: "m1", Vec: v, Source: src}
	}
	if _, err := g.Enroll("admin", gallery.Person{ID: "wang"}, []gallery.Template{tp("wang.jpg", 1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Enroll("admin", gallery.Person{ID: "li"}, []gallery.Template{tp("li.jpg", 0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	const th = 0.45
	// Wang's face enrolled as someone else: refused, naming wang.
	err := g.CheckConflicts("zhao", []gallery.Template{tp("zhao.jpg", 0.95, 0.1, 0.2)}, th)
	if !errors.Is(err, gallery.ErrLooksLikeOther) || !strings.Contains(err.Error(), "wang") || !strings.Contains(err.Error(), "zhao.jpg") {
		t.Errorf("a photo of wang for zhao: %v", err)
	}
	// Another photo of wang for wang: fine.
	if err := g.CheckConflicts("wang", []gallery.Template{tp("wang2.jpg", 0.95, 0.1, 0.2)}, th); err != nil {
		t.Errorf("wang's own photo: %v", err)
	}
	// Close to li, but closer to zhao's other new photo: fine.
	if err := g.CheckConflicts("zhao", []gallery.Template{tp("z1.jpg", 0.5, 0.6, 0.62), tp("z2.jpg", 0.3, 0.5, 0.8)}, th); err != nil {
		t.Errorf("zhao's two photos: %v", err)
	}
	// Nobody close: fine. Another model's templates are not compared.
	if err := g.CheckConflicts("sun", []gallery.Template{tp("sun.jpg", 0, 0, 1), {Model: "m2", Vec: []float32{1, 0, 0}}}, th); err != nil {
		t.Errorf("a new face: %v", err)
	}
}
