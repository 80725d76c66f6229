package throw

// axis is a constant-acceleration Kalman filter for one image axis:
// state [position, velocity, acceleration], white-jerk process noise.
type axis struct {
	x [3]float64
	p [3][3]float64
	q float64 // jerk spectral density, px²/s⁵
	r float64 // measurement variance, px²
}

func newAxis(pos, velSigma, accSigma, q, r float64) axis {
	a := axis{q: q, r: r}
	a.x[0] = pos
	a.p[0][0] = r
	a.p[1][1] = velSigma * velSigma
	a.p[2][2] = accSigma * accSigma
	return a
}

func (a *axis) predict(dt float64) {
	f := [3][3]float64{{1, dt, dt * dt / 2}, {0, 1, dt}, {0, 0, 1}}
	var x [3]float64
	for i := range 3 {
		for j := range 3 {
			x[i] += f[i][j] * a.x[j]
		}
	}
	a.x = x
	var fp, p [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				fp[i][j] += f[i][k] * a.p[k][j]
			}
		}
	}
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				p[i][j] += fp[i][k] * f[j][k]
			}
		}
	}
	// discrete white-jerk noise
	d2, d3, d4, d5 := dt*dt, dt*dt*dt, dt*dt*dt*dt, dt*dt*dt*dt*dt
	qm := [3][3]float64{{d5 / 20, d4 / 8, d3 / 6}, {d4 / 8, d3 / 3, d2 / 2}, {d3 / 6, d2 / 2, dt}}
	for i := range 3 {
		for j := range 3 {
			p[i][j] += a.q * qm[i][j]
		}
	}
	a.p = p
}

// variance of the predicted measurement.
func (a *axis) innovVar() float64 { return a.p[0][0] + a.r }

func (a *axis) update(z float64) {
	s := a.innovVar()
	var k [3]float64
	for i := range 3 {
		k[i] = a.p[i][0] / s
	}
	y := z - a.x[0]
	for i := range 3 {
		a.x[i] += k[i] * y
	}
	var p [3][3]float64
	for i := range 3 {
		for j := range 3 {
			p[i][j] = a.p[i][j] - k[i]*a.p[0][j]
		}
	}
	a.p = p
}
