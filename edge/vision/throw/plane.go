package throw

import (
	"errors"
	"math"
)

// plane maps image px to facade px and back. A camera on the ground
// looking up sees the facade as a trapezoid whose upper floors are
// narrower and shorter; the homography of the calibrated corners undoes
// that, so a fall is a parabola with one gravity in facade px and floors
// are evenly spaced again. The frontal calibration is the identity (h nil):
// nothing is computed and results stay what they were before perspective.
// Only blob centroids and sizes are mapped, never frames.
type plane struct {
	h, inv *[9]float64 // image→facade and facade→image; nil = identity
}

func (p plane) identity() bool { return p.h == nil }

func apply(m *[9]float64, x, y float64) (float64, float64) {
	w := m[6]*x + m[7]*y + m[8]
	return (m[0]*x + m[1]*y + m[2]) / w, (m[3]*x + m[4]*y + m[5]) / w
}

// toFacade maps an image point into facade px.
func (p plane) toFacade(x, y float64) (float64, float64) {
	if p.h == nil {
		return x, y
	}
	return apply(p.h, x, y)
}

// toImage maps a facade point back into the image.
func (p plane) toImage(x, y float64) (float64, float64) {
	if p.inv == nil {
		return x, y
	}
	return apply(p.inv, x, y)
}

// scale is how many facade px one image px spans at image point (x, y),
// across and down: what a blob's width and height become.
func (p plane) scale(x, y float64) (sx, sy float64) {
	if p.h == nil {
		return 1, 1
	}
	const d = 0.5
	x0, y0 := apply(p.h, x-d, y)
	x1, y1 := apply(p.h, x+d, y)
	sx = math.Hypot(x1-x0, y1-y0) / (2 * d)
	x0, y0 = apply(p.h, x, y-d)
	x1, y1 = apply(p.h, x, y+d)
	sy = math.Hypot(x1-x0, y1-y0) / (2 * d)
	return sx, sy
}

// homography is the 3×3 matrix (h22 = 1) that maps each src point onto
// the dst point of the same index.
func homography(src, dst [4][2]float64) (*[9]float64, error) {
	var a [8][9]float64 // augmented
	for i := range 4 {
		x, y, u, v := src[i][0], src[i][1], dst[i][0], dst[i][1]
		a[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := range 8 {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return nil, errors.New("the corners are degenerate (three on a line)")
		}
		a[c], a[p] = a[p], a[c]
		for r := range 8 {
			if r != c {
				f := a[r][c] / a[c][c]
				for k := c; k < 9; k++ {
					a[r][k] -= f * a[c][k]
				}
			}
		}
	}
	var m [9]float64
	for i := range 8 {
		m[i] = a[i][8] / a[i][i]
	}
	m[8] = 1
	return &m, nil
}

// perspective builds the plane of corners (image: roof-left, roof-right,
// ground-right, ground-left) for a facade of floors, and the facade's
// rectangle in facade px. One facade px is the image's mean floor height
// divided by the floor count, so sizes stay near what the camera sees. The
// facade's width in metres is not calibrated: it is taken so that one px
// spans the same distance across as down at the ground edge's middle,
// where the camera looks at the facade most squarely.
func perspective(corners [4][2]float64, floors int) (plane, Facade, error) {
	hImg := ((corners[3][1] - corners[0][1]) + (corners[2][1] - corners[1][1])) / 2
	height := hImg
	rect := func(w float64) [4][2]float64 { return [4][2]float64{{0, 0}, {w, 0}, {w, height}, {0, height}} }
	// the width whose px is as wide as high at the ground's middle
	h1, err := homography(rect(1), corners)
	if err != nil {
		return plane{}, Facade{}, err
	}
	ax, ay := apply(h1, 0.49, height)
	bx, by := apply(h1, 0.51, height)
	across := math.Hypot(bx-ax, by-ay) / 0.02 // image px per unit of x
	cx, cy := apply(h1, 0.5, height-0.01*height)
	dx, dy := apply(h1, 0.5, height)
	down := math.Hypot(dx-cx, dy-cy) / (0.01 * height) // image px per facade px of y
	width := across / down
	if !(width > 1) || math.IsInf(width, 0) {
		return plane{}, Facade{}, errors.New("the corners do not make a facade")
	}
	inv, err := homography(rect(width), corners)
	if err != nil {
		return plane{}, Facade{}, err
	}
	h, err := homography(corners, rect(width))
	if err != nil {
		return plane{}, Facade{}, err
	}
	return plane{h: h, inv: inv}, Facade{TopY: 0, BottomY: height, LeftX: 0, RightX: width, Floors: floors}, nil
}
