package throw

import (
	"image"
	"image/color"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// TestChromaSeesObjectOfTheWallsGrey: a lilac ball of exactly the beige
// wall's luma falls 4 floors. Grey differencing cannot see it; the chroma
// planes must. The same frames in grey give no alarm, which shows the
// detection comes from colour and not from luma left in by rounding. The
// grey frames sent as BGR (a night IR image) are recognised as grey, so
// they do not pay for chroma.
func TestChromaSeesObjectOfTheWallsGrey(t *testing.T) {
	const w, h, fps = 640, 360, 25.0
	o := Defaults()
	o.Facade = Facade{TopY: 20, BottomY: 340, LeftX: 100, RightX: 540, Floors: 8, LowestFloor: 1}
	wall := color.RGBA{175, 165, 150, 0} // gocv takes RGBA and writes BGR
	// luma 0.299 R + 0.587 G + 0.114 B equal to the wall's (166.3)
	ball := color.RGBA{170, 156, 210, 0}
	gpx := o.GPx()
	const y0, x0 = 60.0, 320.0
	const (
		colour = iota
		grey
		greyBGR
	)
	run := func(mode int) (hits []vision.Detection, greyStream bool) {
		d := NewDetector(o, nil)
		defer d.Close()
		fr := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), h, w, gocv.MatTypeCV8UC3)
		defer fr.Close()
		noise := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
		defer noise.Close()
		g := gocv.NewMat()
		defer g.Close()
		for i := range int(3 * fps) {
			fr.SetTo(gocv.NewScalar(float64(wall.B), float64(wall.G), float64(wall.R), 0))
			if tt := float64(i)/fps - 0.8; tt >= 0 { // released at 0.8 s
				y := y0 + 0.5*gpx*tt*tt
				if y < 340 {
					gocv.Circle(&fr, image.Pt(int(x0), int(y)), 5, ball, -1)
				}
			}
			gocv.RandN(&noise, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(2, 2, 2, 0))
			gocv.AddWeighted(fr, 1, noise, 1, -128, &fr)
			m := fr
			switch mode {
			case grey:
				gocv.CvtColor(fr, &g, gocv.ColorBGRToGray)
				m = g
			case greyBGR:
				gocv.CvtColor(fr, &g, gocv.ColorBGRToGray)
				gocv.CvtColor(g, &g, gocv.ColorGrayToBGR)
				m = g
			}
			hits = append(hits, d.Detect(vision.Frame{Mat: m, PTS: time.Duration(float64(i) / fps * float64(time.Second)), Seq: i})...)
		}
		return hits, d.chroma != nil && d.chroma.grey
	}
	hits, greyStream := run(colour)
	if greyStream {
		t.Error("the colour stream was taken for grey")
	}
	if len(hits) != 1 {
		t.Fatalf("colour: %d detections, want 1", len(hits))
	}
	org := hits[0].Data["origin"].(map[string]any)
	if f := org["floor"].(int); f < 7 || f > 8 { // released at y 60: floor 8
		t.Errorf("origin floor %d, want 8 (±1)", f)
	}
	if hits, _ := run(grey); len(hits) != 0 {
		t.Errorf("grey frames: %d detections; the ball should be invisible in luma", len(hits))
	}
	hits, greyStream = run(greyBGR)
	if len(hits) != 0 || !greyStream {
		t.Errorf("grey frames as BGR: %d detections, recognised as grey: %v", len(hits), greyStream)
	}
}
