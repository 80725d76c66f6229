// Package throwsim renders facade scenes with thrown objects and
// distractors (birds, leaves and paper, rain, lights, clouds, auto-exposure,
// camera shake, insects near the lens) into H.264 clips with ground truth,
// for testing and evaluating the throw detector. The physics is in
// docs/throw.md; `go run ./testdata/gen/throwsim` is the command line.
package throwsim

import (
	"encoding/json"
	"fmt"
	"github.com/smartcommunity/warden/edge/config"
	"image"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision/throw"
)

// Options describe the clips to make.
type Options struct {
	W, H         int
	FPS          float64
	Seconds      float64
	CRF          [2]int     // range of x264 crf
	Noise        [2]float64 // range of sensor noise σ, grey levels
	Size         [2]int     // range of object diameters, px (capped at 1 m)
	Floors       [2]int     // range of floors of the synthetic facade
	NegFrac      float64    // share of distractor-only clips
	Background   string     // image or video whose first frame is the backdrop; "" = synthetic facade
	BgFacade     *throw.Facade
	Distractors  []string // kinds allowed; nil = all
	FloorHeightM float64
	// HardRate is the share of throw clips that also get one distractor
	// from HardKinds timed to overlap the fall (0 = none, and the clips of
	// a seed are the same as before this option existed).
	HardRate  float64
	HardKinds []string // nil = HardDefault
	// Perspective films the facade from the ground, looking up: the
	// frontal scene is warped by a homography, so upper floors are
	// narrower and shorter (the top floor a quarter to a third of the
	// lowest's height). Objects, birds, leaves and lights are in the
	// facade's plane; rain, snow, insects, exposure and shake are drawn in
	// the camera's image. The truth gives the facade's image corners.
	Perspective bool
	// Night is an infrared camera at night: grey, twice the noise, a dark
	// facade with lit windows (one switching), and car headlights
	// sweeping the ground and the lowest floors.
	Night bool
}

// HardDefault are the distractors that may overlap a fall when HardRate > 0.
var HardDefault = []string{"rain", "snow", "shake", "exposure", "bird"}

// DefaultOptions: 1280×720 at 25 fps, 8 s clips.
func DefaultOptions() Options {
	return Options{W: 1280, H: 720, FPS: 25, Seconds: 8, CRF: [2]int{20, 30}, Noise: [2]float64{1, 5}, Size: [2]int{3, 20},
		Floors: [2]int{8, 20}, NegFrac: 0.4, FloorHeightM: 3}
}

// DistractorKinds are every distractor the generator draws.
var DistractorKinds = []string{"bird", "leaf", "rain", "lights", "clouds", "exposure", "shake", "insect", "snow"}

// Object is a thrown object's ground truth.
type Object struct {
	Kind         string  `json:"kind"` // "throw"
	ReleaseFloor int     `json:"release_floor"`
	ReleaseFrame int     `json:"release_frame"`
	ReleaseX     float64 `json:"release_x"`
	ReleaseY     float64 `json:"release_y"`
	// Frame2Floors is the first frame where the object has fallen two
	// floor heights below its release point; -1 when it never does.
	Frame2Floors int     `json:"frame_2floors"`
	T2FloorsS    float64 `json:"t_2floors_s"`
	SizePx       int     `json:"size_px"`
	VX           float64 `json:"vx_mps"` // initial, + right
	VY           float64 `json:"vy_mps"` // initial, + up
	TerminalMPS  float64 `json:"terminal_mps"`
	FallFloors   float64 `json:"fall_floors"` // seen falling, in floors
	LastFrame    int     `json:"last_frame"`
}

// Distractor is a distractor's ground truth.
type Distractor struct {
	Kind       string `json:"kind"`
	StartFrame int    `json:"start_frame"`
	EndFrame   int    `json:"end_frame"`
	// DuringThrow: placed on purpose to overlap the fall (Options.HardRate).
	DuringThrow bool `json:"during_throw,omitempty"`
}

// Truth is the ground truth of one clip, written next to it as NAME.json.
type Truth struct {
	Clip   string       `json:"clip"`
	Seed   uint64       `json:"seed"`
	W      int          `json:"width"`
	H      int          `json:"height"`
	FPS    float64      `json:"fps"`
	Frames int          `json:"frames"`
	CRF    int          `json:"crf"`
	Noise  float64      `json:"noise"`
	Facade throw.Facade `json:"facade"` // in the frontal scene; the image's with Perspective off
	// Corners are the facade's image corners (roof-left, roof-right,
	// ground-right, ground-left) of a Perspective clip, the calibration an
	// installer would click.
	Corners      *[4][2]float64 `json:"corners,omitempty"`
	Perspective  bool           `json:"perspective,omitempty"`
	Night        bool           `json:"night,omitempty"`
	FloorHeightM float64        `json:"floor_height_m"`
	Throws       []Object       `json:"throws"`
	Distractors  []Distractor   `json:"distractors"`
}

// ThrowSection is the camera's detect.throw config for this clip.
func (t Truth) ThrowSection() *config.Section {
	f := t.Facade
	if c := t.Corners; c != nil {
		var corners []any
		for _, p := range c {
			corners = append(corners, []any{p[0], p[1]})
		}
		return config.SectionOf(map[string]any{"facade": map[string]any{"corners": corners, "floors": f.Floors, "lowest_floor": f.LowestFloor},
			"floor_height_m": t.FloorHeightM})
	}
	return config.SectionOf(map[string]any{"facade": map[string]any{"top_y": f.TopY, "bottom_y": f.BottomY, "left_x": f.LeftX, "right_x": f.RightX,
		"floors": f.Floors, "lowest_floor": f.LowestFloor}, "floor_height_m": t.FloorHeightM})
}

// ReadTruth loads a ground-truth file; Clip is made absolute.
func ReadTruth(path string) (Truth, error) {
	var t Truth
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%s: %w", path, err)
	}
	if !filepath.IsAbs(t.Clip) {
		t.Clip = filepath.Join(filepath.Dir(path), t.Clip)
	}
	return t, nil
}

// Generate writes n clips clip-SEED-I.mp4 (+ .json) into dir.
func Generate(dir string, seed uint64, n int, o Options) ([]Truth, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []Truth
	for i := range n {
		name := fmt.Sprintf("clip-%d-%03d", seed, i)
		t, err := One(dir, name, seed*1000003+uint64(i), o)
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// scene is the state of one clip being drawn.
type scene struct {
	o      Options
	rng    *rand.Rand
	fc     throw.Facade
	ppm    float64
	base   gocv.Mat
	view   *view // Perspective: the camera looking up; nil = frontal
	truth  Truth
	throws []*thrown
	dists  []drawer
}

type drawer interface {
	draw(fr *gocv.Mat, i int) // fr is 8UC3 BGR
	close()
}

// One renders a single clip DIR/NAME.mp4 and its truth DIR/NAME.json.
func One(dir, name string, seed uint64, o Options) (Truth, error) {
	s := &scene{o: o, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	// RandN uses OpenCV's per-thread RNG: pin the thread and seed it so a
	// clip is the same whatever ran before
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	gocv.SetRNGSeed(int(seed & 0x7fffffff))
	defer func() {
		s.base.Close()
		for _, d := range s.dists {
			d.close()
		}
	}()
	if err := s.backdrop(); err != nil {
		return Truth{}, err
	}
	frames := int(o.Seconds * o.FPS)
	crf := o.CRF[0] + s.rng.IntN(o.CRF[1]-o.CRF[0]+1)
	noise := o.Noise[0] + s.rng.Float64()*(o.Noise[1]-o.Noise[0])
	s.truth = Truth{Clip: name + ".mp4", Seed: seed, W: o.W, H: o.H, FPS: o.FPS, Frames: frames, CRF: crf,
		Noise: math.Round(noise*100) / 100, Facade: s.fc, FloorHeightM: o.FloorHeightM}
	s.plan(frames)
	if o.Perspective {
		s.lookUp()
		defer s.view.close()
	}
	if o.Night {
		s.nightDrawers(seed, frames)
	}

	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", fmt.Sprintf("%dx%d", o.W, o.H),
		"-r", fmt.Sprint(o.FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", fmt.Sprint(crf),
		"-pix_fmt", "yuv420p", filepath.Join(dir, name+".mp4"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Truth{}, err
	}
	var stderr limitedBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return Truth{}, fmt.Errorf("ffmpeg: %w", err)
	}
	fr := gocv.NewMat()
	nz := gocv.NewMatWithSize(o.H, o.W, gocv.MatTypeCV8UC3)
	defer fr.Close()
	defer nz.Close()
	if o.Night {
		noise *= 2
	}
	for i := range frames {
		s.base.CopyTo(&fr)
		for _, d := range s.dists {
			if s.view == nil || !inCamera(d) {
				d.draw(&fr, i)
			}
		}
		for _, t := range s.throws {
			t.draw(&fr, i)
		}
		if s.view != nil {
			s.view.warp(&fr)
			for _, d := range s.dists {
				if inCamera(d) {
					d.draw(&fr, i)
				}
			}
		}
		for _, d := range s.dists {
			if sh, ok := d.(*shake); ok {
				sh.apply(&fr, i)
			}
		}
		gocv.RandN(&nz, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(noise, noise, noise, 0))
		gocv.AddWeighted(fr, 1, nz, 1, -128, &fr)
		if o.Night {
			gocv.CvtColor(fr, &fr, gocv.ColorBGRToGray)
			gocv.CvtColor(fr, &fr, gocv.ColorGrayToBGR)
		}
		if _, err := stdin.Write(fr.ToBytes()); err != nil {
			_ = cmd.Wait()
			return Truth{}, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return Truth{}, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	for _, t := range s.throws {
		s.truth.Throws = append(s.truth.Throws, t.gt)
	}
	b, _ := json.MarshalIndent(s.truth, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
		return Truth{}, err
	}
	s.truth.Clip = filepath.Join(dir, name+".mp4") // the file says it relative to itself
	return s.truth, nil
}

type limitedBuf struct{ b []byte }

func (l *limitedBuf) Write(p []byte) (int, error) {
	if len(l.b) < 4096 {
		l.b = append(l.b, p[:min(len(p), 4096-len(l.b))]...)
	}
	return len(p), nil
}
func (l *limitedBuf) String() string { return string(l.b) }

var _ io.Writer = (*limitedBuf)(nil)

// backdrop loads or draws the static scene and its facade calibration.
func (s *scene) backdrop() error {
	o := s.o
	if o.Background != "" {
		m := gocv.IMRead(o.Background, gocv.IMReadColor)
		if m.Empty() {
			m.Close()
			vc, err := gocv.VideoCaptureFile(o.Background)
			if err != nil {
				return fmt.Errorf("background %s: %w", o.Background, err)
			}
			m = gocv.NewMat()
			ok := vc.Read(&m)
			vc.Close()
			if !ok || m.Empty() {
				m.Close()
				return fmt.Errorf("background %s: no frame", o.Background)
			}
		}
		if o.BgFacade == nil {
			m.Close()
			return fmt.Errorf("background %s: needs its facade calibration", o.Background)
		}
		sx, sy := float64(o.W)/float64(m.Cols()), float64(o.H)/float64(m.Rows())
		f := *o.BgFacade
		s.fc = throw.Facade{TopY: math.Round(f.TopY * sy), BottomY: math.Round(f.BottomY * sy), LeftX: math.Round(f.LeftX * sx),
			RightX: math.Round(f.RightX * sx), Floors: f.Floors, LowestFloor: f.LowestFloor}
		s.base = gocv.NewMat()
		gocv.Resize(m, &s.base, image.Pt(o.W, o.H), 0, 0, gocv.InterpolationLinear)
		m.Close()
	} else {
		s.synthetic()
	}
	if o.Night && o.Background != "" {
		return fmt.Errorf("night is for the synthetic facade only")
	}
	s.ppm = s.fc.FloorPx() / o.FloorHeightM
	return nil
}

func (s *scene) synthetic() {
	o, r := s.o, s.rng
	W, H := float64(o.W), float64(o.H)
	floors := o.Floors[0] + r.IntN(o.Floors[1]-o.Floors[0]+1)
	top := math.Round(H * (0.06 + 0.06*r.Float64()))
	bottom := math.Round(H * (0.86 + 0.06*r.Float64()))
	left := math.Round(W * (0.12 + 0.15*r.Float64()))
	right := math.Round(W * (0.73 + 0.15*r.Float64()))
	s.fc = throw.Facade{TopY: top, BottomY: bottom, LeftX: left, RightX: right, Floors: floors, LowestFloor: 1}
	img := gocv.NewMatWithSize(o.H, o.W, gocv.MatTypeCV8UC3)
	// sky gradient, ground
	for y := 0; y < o.H; y++ {
		c := color.RGBA{uint8(150 + 60*float64(y)/H), uint8(180 + 50*float64(y)/H), 235, 0}
		if o.Night {
			c = color.RGBA{uint8(18 + 14*float64(y)/H), uint8(20 + 14*float64(y)/H), 28, 0}
		}
		gocv.Line(&img, image.Pt(0, y), image.Pt(o.W, y), c, 1)
	}
	ground := color.RGBA{90, 110, 80, 0}
	if o.Night {
		ground = color.RGBA{30, 32, 30, 0}
	}
	gocv.Rectangle(&img, image.Rect(0, int(bottom), o.W, o.H), ground, -1)
	wall := uint8(150 + r.IntN(70))
	if o.Night { // lit by the camera's infrared, dimly
		wall = uint8(60 + r.IntN(40))
	}
	wc := color.RGBA{wall, uint8(float64(wall) * 0.95), uint8(float64(wall) * 0.85), 0}
	gocv.Rectangle(&img, image.Rect(int(left), int(top), int(right), int(bottom)), wc, -1)
	fp := s.fc.FloorPx()
	cols := max(3, int((right-left)/(fp*1.3)))
	cw := (right - left) / float64(cols)
	for k := range floors {
		yb := bottom - float64(k)*fp
		gocv.Rectangle(&img, image.Rect(int(left), int(yb-fp*0.12), int(right), int(yb)), color.RGBA{wall - 40, wall - 40, wall - 45, 0}, -1)
		for c := range cols {
			x0 := left + float64(c)*cw + cw*0.25
			win := image.Rect(int(x0), int(yb-fp*0.8), int(x0+cw*0.5), int(yb-fp*0.3))
			g := uint8(40 + r.IntN(60))
			wc := color.RGBA{g, g + 10, g + 20, 0}
			if o.Night {
				wc = color.RGBA{g / 3, g / 3, g / 3, 0}
				if (k*31+int(g)*7+c)%3 == 0 { // about a third lit, without drawing from r
					wc = color.RGBA{uint8(min(255, 170+int(g))), uint8(min(255, 150+int(g))), uint8(110 + int(g)/2), 0}
				}
			}
			gocv.Rectangle(&img, win, wc, -1)
		}
	}
	// static texture so the background is not flat
	tex := gocv.NewMatWithSize(o.H, o.W, gocv.MatTypeCV8UC3)
	gocv.RandN(&tex, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(10, 10, 10, 0))
	gocv.GaussianBlur(tex, &tex, image.Pt(3, 3), 0, 0, gocv.BorderDefault)
	gocv.AddWeighted(img, 1, tex, 1, -128, &img)
	tex.Close()
	s.base = img
}

func (s *scene) pick(kinds []string) string { return kinds[s.rng.IntN(len(kinds))] }

func (s *scene) plan(frames int) {
	r := s.rng
	allowed := s.o.Distractors
	if allowed == nil {
		allowed = DistractorKinds
	}
	neg := r.Float64() < s.o.NegFrac
	nd := 0
	if neg {
		nd = 1 + r.IntN(2)
	} else {
		s.throws = append(s.throws, s.newThrow(frames))
		nd = r.IntN(2)
		// rain, shake and exposure jumps during a fall hide it on purpose
		// (the detector suspends); positives get the gentler distractors
		var gentle []string
		for _, k := range allowed {
			if k == "bird" || k == "leaf" || k == "lights" || k == "clouds" || k == "insect" {
				gentle = append(gentle, k)
			}
		}
		allowed = gentle
		// HardRate > 0 is the one place the rng is drawn more, so clips of
		// a seed without it stay as they were
		if s.o.HardRate > 0 && r.Float64() < s.o.HardRate {
			hard := s.o.HardKinds
			if hard == nil {
				hard = HardDefault
			}
			if len(hard) > 0 {
				th := s.throws[0]
				// start anywhere from 0.5 s before the release to the last
				// quarter of the fall, so it overlaps the fall
				lo := th.start - int(0.5*s.o.FPS)
				hi := th.start + max(1, 3*(th.gt.LastFrame-th.start)/4)
				start := max(0, lo+r.IntN(max(1, hi-lo)))
				d, gt := s.newDistractorAt(s.pick(hard), frames, start)
				gt.DuringThrow = true
				s.dists = append(s.dists, d)
				s.truth.Distractors = append(s.truth.Distractors, gt)
			}
		}
	}
	for range nd {
		if len(allowed) == 0 {
			break
		}
		k := s.pick(allowed)
		d, gt := s.newDistractor(k, frames)
		s.dists = append(s.dists, d)
		s.truth.Distractors = append(s.truth.Distractors, gt)
	}
}

// thrown is one object in free fall with quadratic drag.
type thrown struct {
	gt    Object
	col   color.RGBA
	pos   [][2]float64 // px per frame from release; NaN when gone
	start int
}

func (s *scene) newThrow(frames int) *thrown {
	r, fc, o := s.rng, s.fc, s.o
	fp := fc.FloorPx()
	// release floor: at least 3 floors up so that the fall spans 2 floors
	lo := fc.LowestFloor + 2
	floor := lo + r.IntN(fc.LowestFloor+fc.Floors-lo)
	k := float64(floor - fc.LowestFloor)
	hand := 0.9 + 0.7*r.Float64() // m above the floor slab: sill, rail, hand
	y0 := fc.BottomY - k*fp - hand*s.ppm
	x0 := fc.LeftX + (0.1+0.8*r.Float64())*(fc.RightX-fc.LeftX)
	vx := (r.Float64()*2 - 1) * 2.5
	vy := 0.0
	switch r.IntN(3) {
	case 0: // small upward toss
		vy = 0.5 + 1.5*r.Float64()
	case 1: // thrown down a little
		vy = -r.Float64()
	}
	vt := 20 + 40*r.Float64() // terminal speed, m/s: dense objects fall nearly freely
	// nothing thrown from a window is much over 1 m across
	hiSize := max(o.Size[0], min(o.Size[1], int(s.ppm)))
	size := o.Size[0] + r.IntN(hiSize-o.Size[0]+1)
	start := int((0.8 + 1.2*r.Float64()) * o.FPS)
	t := &thrown{start: start, gt: Object{Kind: "throw", ReleaseFloor: floor, ReleaseFrame: start, ReleaseX: round2(x0), ReleaseY: round2(y0),
		Frame2Floors: -1, SizePx: size, VX: round2(vx), VY: round2(vy), TerminalMPS: round2(vt), LastFrame: -1}}
	contrast := 70 + r.IntN(60)
	tint := r.IntN(40)
	// integrate in metres (X right, Y up) with 8 substeps per frame
	dt := 1 / o.FPS / 8
	kd := throw.Gravity / (vt * vt)
	X, Y, VX, VY := 0.0, 0.0, vx, vy
	ground := fc.BottomY + float64(fc.LowestFloor-1)*fp
	maxFall := 0.0
	for i := start; i < frames; i++ {
		px, py := x0+X*s.ppm, y0-Y*s.ppm
		if py > ground-float64(size)/2 || px < 0 || px >= float64(o.W) || py < -float64(size) {
			break
		}
		t.pos = append(t.pos, [2]float64{px, py})
		t.gt.LastFrame = i
		maxFall = max(maxFall, -Y)
		if t.gt.Frame2Floors < 0 && -Y*s.ppm >= 2*fp {
			t.gt.Frame2Floors = i
			t.gt.T2FloorsS = round2(float64(i) / o.FPS)
		}
		for range 8 {
			v := math.Hypot(VX, VY)
			ax, ay := -kd*v*VX, -throw.Gravity-kd*v*VY
			X += VX*dt + ax*dt*dt/2
			Y += VY*dt + ay*dt*dt/2
			VX += ax * dt
			VY += ay * dt
		}
	}
	t.gt.FallFloors = round2(maxFall * s.ppm / fp)
	// contrast against the facade the object falls past (the median grey
	// along its path): one of the wall's own shade is seen by no camera
	greys := []int{128}
	for _, p := range t.pos {
		if x, y := int(p[0]), int(p[1]); x >= 0 && y >= 0 && x < o.W && y < o.H {
			c := s.base.GetVecbAt(y, x)
			greys = append(greys, (int(c[0])+int(c[1])+int(c[2]))/3)
		}
	}
	if len(greys) > 1 {
		greys = greys[1:]
	}
	slices.Sort(greys)
	grey := greys[len(greys)/2]
	c := grey + contrast
	if grey > 128 {
		c = grey - contrast
	}
	c = max(0, min(255, c))
	t.col = color.RGBA{uint8(c), uint8(max(0, c-tint)), uint8(min(255, c+tint/2)), 0}
	return t
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (t *thrown) draw(fr *gocv.Mat, i int) {
	j := i - t.start
	if j < 0 || j >= len(t.pos) {
		return
	}
	p := t.pos[j]
	const shift = 4
	rad := max(1, int(float64(t.gt.SizePx)/2*16))
	gocv.CircleWithParams(fr, image.Pt(int(p[0]*16), int(p[1]*16)), rad, t.col, -1, gocv.LineAA, shift)
}

// BuildingFacade is the calibration of building_orange_fall.avi (868×600,
// 24 px/m): 3 m floors are 72 px; the orange lands at y≈531 and the roof line
// above x≈330 is near y≈27, so 7 floors span 27..531.
func BuildingFacade() throw.Facade {
	return throw.Facade{TopY: 27, BottomY: 531, LeftX: 150, RightX: 868, Floors: 7, LowestFloor: 1}
}
