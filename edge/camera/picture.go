package camera

import (
	"fmt"

	"gocv.io/x/gocv"
)

// picture is one decoded frame as the detectors see it (mat) and, made on
// first use, in colour for snapshots. A camera whose detectors read luma
// alone (motion) converts an I420 frame to BGR only for the pictures it
// keeps, about once a second, instead of for every analysed frame.
type picture struct {
	c      *Camera
	f      *liveFrame
	mat    gocv.Mat
	bgr    gocv.Mat
	hasBGR bool
	mats   []gocv.Mat // to close
	buf    []byte     // the BGR conversion's buffer, back to the pool
}

func (c *Camera) picture(f *liveFrame, luma bool) (*picture, error) {
	p := &picture{c: c, f: f}
	var err error
	switch {
	case !f.i420:
		if p.bgr, err = p.wrap(f.pix, gocv.MatTypeCV8UC3); err == nil {
			p.mat, p.hasBGR = p.bgr, true
		}
	case luma: // the Y plane is the first w×h bytes of I420
		p.mat, err = p.wrap(f.pix[:f.w*f.h], gocv.MatTypeCV8UC1)
	default:
		if err = p.convert(); err == nil {
			p.mat = p.bgr
		}
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("camera %s: frame: %w", c.cfg.ID, err)
	}
	return p, nil
}

// colour is the frame in BGR; it belongs to the picture.
func (p *picture) colour() (gocv.Mat, error) {
	if !p.hasBGR {
		if err := p.convert(); err != nil {
			return gocv.Mat{}, err
		}
	}
	return p.bgr, nil
}

func (p *picture) convert() error {
	w, h := p.f.w, p.f.h
	buf := p.c.colours.get(w * h * 3)
	if err := i420ToBGR(p.f.pix, buf, w, h); err != nil {
		p.c.colours.put(buf)
		return fmt.Errorf("I420 to BGR: %w", err)
	}
	m, err := p.wrap(buf, gocv.MatTypeCV8UC3)
	p.buf = buf
	if err != nil {
		return err
	}
	p.bgr, p.hasBGR = m, true
	return nil
}

// wrap makes a Mat over b (no copy), closed with the picture.
func (p *picture) wrap(b []byte, t gocv.MatType) (gocv.Mat, error) {
	m, err := gocv.NewMatFromBytes(p.f.h, p.f.w, t, b)
	if err == nil {
		p.mats = append(p.mats, m)
	}
	return m, err
}

// close frees the Mats; the frame's own buffer stays the caller's.
func (p *picture) close() {
	for _, m := range p.mats {
		m.Close()
	}
	p.mats = nil
	if p.buf != nil {
		p.c.colours.put(p.buf)
		p.buf = nil
	}
}
