package throw

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

// OpenCV 4.6's phaseCorrelate multiplies its inputs by the window in
// place when their size is already a fast DFT size (640×512 is, 644×577
// is not): the background and the frame came back windowed, black at the
// edges. phaseShift must measure the shift and leave both alone.
func TestPhaseShiftLeavesItsInputsAlone(t *testing.T) {
	for _, sz := range []image.Point{{640, 512}, {644, 577}} {
		d := &Detector{stabiliser: stabiliser{hann: gocv.NewMat(), pcA: gocv.NewMat(), pcB: gocv.NewMat(), noWin: gocv.NewMat()}}
		tex := gocv.NewMatWithSize(sz.Y, sz.X, gocv.MatTypeCV8U)
		gocv.RandU(&tex, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 0, 0, 0))
		gocv.GaussianBlur(tex, &tex, image.Pt(0, 0), 3, 3, gocv.BorderReflect)
		d.bg = gocv.NewMat()
		tex.ConvertTo(&d.bg, gocv.MatTypeCV32F)
		tex.Close()
		d.grayF = gocv.NewMat()
		vision.Shift(d.bg, &d.grayF, 2, -3)
		bg0, fr0 := d.bg.Mean().Val1, d.grayF.Mean().Val1
		dx, dy, resp := d.phaseShift()
		if math.Abs(dx-2) > 0.1 || math.Abs(dy+3) > 0.1 || resp < shakeResponse {
			t.Errorf("%v: shift (%.2f, %.2f) response %.2f, want (2, -3)", sz, dx, dy, resp)
		}
		if bg, fr := d.bg.Mean().Val1, d.grayF.Mean().Val1; bg != bg0 || fr != fr0 {
			t.Errorf("%v: means went from %.2f, %.2f to %.2f, %.2f: the inputs were changed", sz, bg0, fr0, bg, fr)
		}
		for _, m := range []*gocv.Mat{&d.bg, &d.grayF, &d.hann, &d.pcA, &d.pcB, &d.noWin} {
			m.Close()
		}
	}
}
