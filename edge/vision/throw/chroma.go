package throw

import (
	"image"
	"math"

	"gocv.io/x/gocv"
)

// chroma finds motion in colour that grey misses: an object of the wall's
// own brightness but another hue (a lilac bag on a beige wall). It works
// at half resolution, the chroma resolution of a 4:2:0 stream anyway, so
// it adds about a quarter to the grey pipeline's cost.
type chroma struct {
	small, ycc  gocv.Mat
	planes      [2]chromaPlane // Cr, Cb
	fg, notFG   gocv.Mat       // half resolution
	up          gocv.Mat       // fg at ROI size
	have        bool
	grey        bool // the stream has no colour (an IR night image sent as BGR)
	nextLook    int  // frames until a grey stream is looked at again
	noiseAvg    [2]float64
	size, sizeH image.Point
}

type chromaPlane struct{ f, bg, diff, d8, fg gocv.Mat }

const (
	chromaMinThreshold = 10  // chroma levels; compression noise in chroma is lower than in luma
	chromaAlpha        = 0.1 // chroma background learning rate, everywhere
	greyLookEvery      = 250 // frames: how often a grey stream is checked for colour (10 s at 25 fps)
	greyChroma         = 1.5 // chroma levels: planes this close to neutral and this flat are grey
)

func newChroma(w, h int) *chroma {
	c := &chroma{size: image.Pt(w, h), sizeH: image.Pt(max(1, w/2), max(1, h/2))}
	for _, m := range c.mats() {
		*m = gocv.NewMat()
	}
	return c
}

func (c *chroma) mats() []*gocv.Mat {
	ms := []*gocv.Mat{&c.small, &c.ycc, &c.fg, &c.notFG, &c.up}
	for i := range c.planes {
		p := &c.planes[i]
		ms = append(ms, &p.f, &p.bg, &p.diff, &p.d8, &p.fg)
	}
	return ms
}

func (c *chroma) close() {
	for _, m := range c.mats() {
		m.Close()
	}
}

func (c *chroma) reset() { c.have, c.noiseAvg, c.grey, c.nextLook = false, [2]float64{}, false, 0 }

// active: chroma is worth differencing in this frame.
func (c *chroma) active() bool { return c.have && !c.grey }

// load converts the colour ROI to half-resolution Cr and Cb planes. A grey
// stream (night IR) is recognised and then looked at only every
// greyLookEvery frames, so it does not pay for chroma it does not have.
func (c *chroma) load(roi gocv.Mat) {
	if c.grey && c.nextLook > 0 {
		c.nextLook--
		return
	}
	gocv.Resize(roi, &c.small, c.sizeH, 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(c.small, &c.ycc, gocv.ColorBGRToYCrCb)
	chans := gocv.Split(c.ycc)
	for i := range c.planes {
		chans[i+1].ConvertTo(&c.planes[i].f, gocv.MatTypeCV32F)
	}
	for _, m := range chans {
		m.Close()
	}
	wasGrey := c.grey
	c.grey = c.neutral()
	if c.grey {
		c.nextLook = greyLookEvery
		return
	}
	if wasGrey {
		c.have = false // colour came back (day mode): learn it afresh
	}
	if !c.have {
		for i := range c.planes {
			c.planes[i].f.CopyTo(&c.planes[i].bg)
		}
		c.have = true
	}
}

// neutral: both chroma planes are flat and near 128, as in a grey image.
func (c *chroma) neutral() bool {
	mean, sd := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer sd.Close()
	for i := range c.planes {
		gocv.MeanStdDev(c.planes[i].f, &mean, &sd)
		if math.Abs(mean.GetDoubleAt(0, 0)-128) > greyChroma || sd.GetDoubleAt(0, 0) > greyChroma {
			return false
		}
	}
	return true
}

// detect ORs into fg (ROI size, 8-bit) the pixels whose hue changed.
func (c *chroma) detect(fg *gocv.Mat) {
	for i := range c.planes {
		p := &c.planes[i]
		gocv.AbsDiff(p.f, p.bg, &p.diff)
		p.diff.ConvertTo(&p.d8, gocv.MatTypeCV8U)
		noise := p.d8.Mean().Val1
		if c.noiseAvg[i] == 0 {
			c.noiseAvg[i] = noise
		} else {
			c.noiseAvg[i] = 0.95*c.noiseAvg[i] + 0.05*noise
		}
		thr := max(chromaMinThreshold, noiseK*c.noiseAvg[i])
		gocv.Threshold(p.d8, &p.fg, float32(thr), 255, gocv.ThresholdBinary)
	}
	gocv.BitwiseOr(c.planes[0].fg, c.planes[1].fg, &c.fg)
	gocv.Resize(c.fg, &c.up, c.size, 0, 0, gocv.InterpolationNearestNeighbor)
	gocv.BitwiseOr(*fg, c.up, fg)
}

// learn updates the chroma background where notFG (ROI size) is set, or
// everywhere when notFG is nil.
func (c *chroma) learn(alpha float64, notFG *gocv.Mat) {
	if notFG != nil {
		gocv.Resize(*notFG, &c.notFG, c.sizeH, 0, 0, gocv.InterpolationNearestNeighbor)
	}
	for i := range c.planes {
		p := &c.planes[i]
		if notFG == nil {
			gocv.AccumulatedWeighted(p.f, &p.bg, alpha)
		} else {
			gocv.AccumulatedWeightedWithMask(p.f, &p.bg, alpha, c.notFG)
		}
	}
}
