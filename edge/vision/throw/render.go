package throw

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/vision"
)

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// imagePt is the image pixel of a facade point (truncated, as drawn before
// perspective existed).
func (d *Detector) imagePt(x, y float64) image.Point {
	x, y = d.plane.toImage(x, y)
	return image.Pt(int(x), int(y))
}

func (d *Detector) detection(f vision.Frame, v verdict) vision.Detection {
	fc := d.opt.Facade
	floor := fc.FloorAt(v.originY)
	// the range: no lower than where it was first seen falling, no higher
	// than the uncapped apex of the fitted path
	lo, hi := fc.FloorAt(v.pts[0].y), fc.FloorAt(v.apexY)
	lo, hi = min(lo, floor), max(hi, floor)
	traj := make([]any, 0, len(v.pts)+1)
	var box image.Rectangle
	size := 0
	for i, p := range v.pts {
		traj = append(traj, []any{p.t.Milliseconds(), round1(p.u), round1(p.v)})
		r := image.Rect(int(p.u)-p.iw/2, int(p.v)-p.ih/2, int(p.u)+(p.iw+1)/2+1, int(p.v)+(p.ih+1)/2+1)
		if i == 0 {
			box = r
		} else {
			box = box.Union(r)
		}
		size = max(size, min(p.iw, p.ih))
	}
	box = box.Intersect(image.Rect(0, 0, d.size.X, d.size.Y))
	ox, oy := d.plane.toImage(v.originX, v.originY)
	data := map[string]any{
		// x, y in the image; the facade's own metres from its ground-left corner
		"origin": map[string]any{"floor": floor, "floor_min": lo, "floor_max": hi, "x": round1(ox), "y": round1(oy),
			"facade": map[string]any{"x_m": round1((v.originX - fc.LeftX) / d.ppm), "height_m": round1((fc.BottomY - v.originY) / d.ppm)}},
		"trajectory": traj,
		"bbox":       vision.BBoxList(box),
		"accel_g":    math.Round(v.accel/d.gpx*100) / 100,
		"fit_rms_px": math.Round(v.fy.rms*100) / 100,
		"size_px":    size,
	}
	det := vision.Detection{Type: event.ThrowDetected, Severity: event.Critical, Data: data, BBox: box,
		Snapshot: d.opt.Snapshot, Clip: d.opt.Clip}
	if img, err := d.trajectoryImage(f.Mat, v, floor); err == nil {
		det.Images = []vision.Image{{Kind: "trajectory", ContentType: "image/jpeg", Data: img}}
	}
	return det
}

// trajectoryImage draws the observed path, the fitted path back to the
// origin and the origin floor's band on a copy of the frame.
func (d *Detector) trajectoryImage(frame gocv.Mat, v verdict, floor int) ([]byte, error) {
	img := gocv.NewMat()
	defer img.Close()
	if frame.Channels() == 1 {
		gocv.CvtColor(frame, &img, gocv.ColorGrayToBGR)
	} else {
		frame.CopyTo(&img)
	}
	fc := d.opt.Facade
	yt, yb := fc.Band(floor)
	orange := color.RGBA{255, 160, 0, 0}
	label := image.Pt(int(fc.LeftX)+4, max(14, int(yt)-4))
	if d.plane.identity() {
		gocv.Rectangle(&img, image.Rect(int(fc.LeftX), int(yt), int(fc.RightX), int(yb)), orange, 2)
	} else {
		var quad []image.Point
		for _, p := range [][2]float64{{fc.LeftX, yt}, {fc.RightX, yt}, {fc.RightX, yb}, {fc.LeftX, yb}} {
			quad = append(quad, d.imagePt(p[0], p[1]))
		}
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{quad})
		gocv.Polylines(&img, pv, true, orange, 2)
		pv.Close()
		label = image.Pt(quad[0].X+4, max(14, quad[0].Y-4))
	}
	// "7F" is how floors are written on Chinese signs; OpenCV's Hershey fonts have no CJK glyphs.
	gocv.PutText(&img, fmt.Sprintf("%dF", floor), label, gocv.FontHersheySimplex, 0.6, orange, 2)
	// fitted path from the origin to the first sighting (dashed by dots)
	for t := v.originT; t < 0; t += 0.02 {
		gocv.Circle(&img, d.imagePt(v.fx.at(t), v.fy.at(t)), 1, color.RGBA{255, 255, 255, 0}, -1)
	}
	pts := make([]image.Point, len(v.pts))
	for i, p := range v.pts {
		pts[i] = image.Pt(int(math.Round(p.u)), int(math.Round(p.v)))
	}
	pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
	gocv.Polylines(&img, pv, false, color.RGBA{255, 0, 0, 0}, 2)
	pv.Close()
	gocv.Circle(&img, d.imagePt(v.originX, v.originY), 6, color.RGBA{255, 255, 0, 0}, 2)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
