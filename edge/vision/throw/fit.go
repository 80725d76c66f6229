package throw

import "math"

// fit is a least-squares polynomial of degree 2 (or 1) in t.
type fit struct {
	c   [3]float64 // y = c0 + c1 t + c2 t²; the acceleration is 2·c2
	rms float64
	ok  bool
}

func (f fit) at(t float64) float64 { return f.c[0] + f.c[1]*t + f.c[2]*t*t }

// polyfit fits ys over ts (t relative to ts[0] for conditioning is up to the
// caller) with a polynomial of the given degree (1 or 2), by least squares
// weighted by ws (nil: all 1); rms is the weighted one.
func polyfit(ts, ys, ws []float64, deg int) fit {
	n := deg + 1
	if len(ts) < n+1 {
		return fit{}
	}
	w := func(i int) float64 {
		if ws == nil {
			return 1
		}
		return ws[i]
	}
	// normal equations, at most 3×3
	var a [3][4]float64
	for i, t := range ts {
		pw := [5]float64{1, t, t * t, t * t * t, t * t * t * t}
		wi := w(i)
		for r := range n {
			for c := range n {
				a[r][c] += wi * pw[r+c]
			}
			a[r][3] += wi * pw[r] * ys[i]
		}
	}
	// Gauss-Jordan with partial pivoting
	for col := range n {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-12 {
			return fit{}
		}
		a[col], a[piv] = a[piv], a[col]
		for r := range n {
			if r == col {
				continue
			}
			m := a[r][col] / a[col][col]
			for c := col; c < 4; c++ {
				a[r][c] -= m * a[col][c]
			}
		}
	}
	var f fit
	for r := range n {
		f.c[r] = a[r][3] / a[r][r]
	}
	var ss, sw float64
	for i, t := range ts {
		d := ys[i] - f.at(t)
		ss += w(i) * d * d
		sw += w(i)
	}
	f.rms = math.Sqrt(ss / sw)
	f.ok = true
	return f
}
