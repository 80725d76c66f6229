package videoeval

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision/face"
)

// ClipOptions shape the composed clip: people step up one at a time, their
// face growing as they approach, with a short gap before the next.
type ClipOptions struct {
	Width, Height    int     // frame size (1280×720)
	FPS              int     // frames per second of the clip (10)
	MinFace, MaxFace int     // face height in pixels when closest (90–160)
	MinGap, MaxGap   float64 // seconds of empty scene between people (0.3–1)
	MinHold, MaxHold float64 // seconds a person is in view (1–2)
	Renders          int     // each visit is rendered this many times (size, place, mirror, light differ)
	Seed             uint64
}

// DefaultClip is the gate of the issue: 720p, faces 90–160 px high, people
// 0.3–1 s apart.
func DefaultClip() ClipOptions {
	return ClipOptions{Width: 1280, Height: 720, FPS: 10, MinFace: 90, MaxFace: 160,
		MinGap: 0.3, MaxGap: 1, MinHold: 1, MaxHold: 2, Renders: 1, Seed: 1}
}

// Visit is one person in view: the ground truth of the clip.
type Visit struct {
	Item
	Start, End time.Duration
	FacePx     int // face height when closest
	Mirror     bool
}

// Compose writes an H.264 clip of the visits (shuffled, each rendered
// o.Renders times) to out with ffmpeg and returns its ground truth. The
// face box of each photo is found with eng, so a face is scaled to the
// height asked for, not the photo.
func Compose(ctx context.Context, eng *face.Engine, items []Item, out string, o ClipOptions) ([]Visit, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, errNoFFmpeg
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b9))
	var order []Item
	for range max(o.Renders, 1) {
		order = append(order, items...)
	}
	order, err := apart(order, rng)
	if err != nil {
		return nil, err
	}

	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "bgr24", "-s", fmt.Sprintf("%dx%d", o.Width, o.Height), "-r", fmt.Sprint(o.FPS), "-i", "-",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", fmt.Sprint(2*o.FPS), "-pix_fmt", "yuv420p", "-y", out)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	visits, werr := render(eng, order, stdin, o, rng)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	return visits, werr
}

// apart orders the visits at random such that no one is seen twice in a
// row: a person who steps back and up again within a second is one visit
// to the gate, not two, and the detector rightly keeps one track for them.
func apart(items []Item, rng *rand.Rand) ([]Item, error) {
	left := slices.Clone(items)
	rng.Shuffle(len(left), func(i, j int) { left[i], left[j] = left[j], left[i] })
	out := make([]Item, 0, len(left))
	for len(left) > 0 {
		count := map[string]int{}
		for _, it := range left {
			count[it.Person]++
		}
		forced := "" // someone with more than half of what is left goes now
		for p, n := range count {
			if 2*n > len(left) {
				forced = p
			}
		}
		pick := -1
		for i, it := range left {
			if (len(out) == 0 || out[len(out)-1].Person != it.Person) && (forced == "" || it.Person == forced) {
				pick = i
				break
			}
		}
		if pick < 0 {
			return nil, errors.New("cannot keep people apart: one person has half the visits or more; add other people to the manifest")
		}
		out = append(out, left[pick])
		left = slices.Delete(left, pick, pick+1)
	}
	return out, nil
}

func render(eng *face.Engine, order []Item, w io.Writer, o ClipOptions, rng *rand.Rand) ([]Visit, error) {
	bg := scene(o.Width, o.Height)
	defer bg.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	n := 0 // frames written
	at := func() time.Duration { return time.Duration(n) * time.Second / time.Duration(o.FPS) }
	emit := func(m gocv.Mat) error {
		n++
		_, err := w.Write(m.ToBytes())
		return err
	}
	uniform := func(a, b float64) float64 { return a + rng.Float64()*(b-a) }
	var visits []Visit
	for _, it := range order {
		for range int(uniform(o.MinGap, o.MaxGap)*float64(o.FPS) + 0.5) {
			if err := emit(bg); err != nil {
				return visits, err
			}
		}
		src := gocv.IMRead(it.Path, gocv.IMReadColor)
		if src.Empty() {
			return visits, fmt.Errorf("%s: not a readable image", it.Path)
		}
		box, ok, err := eng.Locate(src)
		if err != nil {
			src.Close()
			return visits, fmt.Errorf("%s: %w", it.Path, err)
		}
		if !ok { // no face the detector finds: assume a passport-style framing
			h := src.Rows() * 2 / 3
			box = image.Rect(src.Cols()/2-h*3/8, src.Rows()/2-h/2, src.Cols()/2+h*3/8, src.Rows()/2+h/2)
		}
		v := Visit{Item: it, Start: at(), FacePx: o.MinFace + rng.IntN(o.MaxFace-o.MinFace+1), Mirror: rng.IntN(2) == 1}
		if v.Mirror {
			gocv.Flip(src, &src, 1)
			box = image.Rect(src.Cols()-box.Max.X, box.Min.Y, src.Cols()-box.Min.X, box.Max.Y)
		}
		gain := uniform(0.75, 1.2) // lighting differs from the enrolment photo
		cx, cy := uniform(0.3, 0.7)*float64(o.Width), uniform(0.35, 0.5)*float64(o.Height)
		drift := uniform(-0.05, 0.05) * float64(o.Width)
		frames := max(int(uniform(o.MinHold, o.MaxHold)*float64(o.FPS)+0.5), 2)
		h0 := max(float64(o.MinFace), 0.8*float64(v.FacePx)) // walking up to the gate
		for i := range frames {
			k := float64(i) / float64(frames-1)
			h := h0 + k*(float64(v.FacePx)-h0)
			place(bg, &frame, src, box, h/float64(box.Dy()), cx+k*drift, cy, gain)
			if err := emit(frame); err != nil {
				src.Close()
				return visits, err
			}
		}
		src.Close()
		v.End = at()
		visits = append(visits, v)
	}
	for range o.FPS { // the last person walks out of view
		if err := emit(bg); err != nil {
			return visits, err
		}
	}
	return visits, nil
}

// place draws src scaled by s on a copy of bg, with the centre of the face
// box at (cx, cy), clipped to the frame.
func place(bg gocv.Mat, dst *gocv.Mat, src gocv.Mat, box image.Rectangle, s, cx, cy, gain float64) {
	bg.CopyTo(dst)
	scaled := gocv.NewMat()
	defer scaled.Close()
	gocv.Resize(src, &scaled, image.Pt(max(int(float64(src.Cols())*s), 1), max(int(float64(src.Rows())*s), 1)), 0, 0, gocv.InterpolationLinear)
	scaled.ConvertToWithParams(&scaled, gocv.MatTypeCV8UC3, float32(gain), 0)
	fc := image.Pt(int(float64(box.Min.X+box.Max.X)/2*s), int(float64(box.Min.Y+box.Max.Y)/2*s))
	off := image.Pt(int(cx)-fc.X, int(cy)-fc.Y)
	r := image.Rect(0, 0, scaled.Cols(), scaled.Rows()).Add(off).Intersect(image.Rect(0, 0, dst.Cols(), dst.Rows()))
	if r.Empty() {
		return
	}
	from := scaled.Region(r.Sub(off))
	defer from.Close()
	to := dst.Region(r)
	defer to.Close()
	from.CopyTo(&to)
}

// scene is the empty entrance: a wall, a door frame and a floor, so the
// detector sees edges and texture rather than a flat field.
func scene(w, h int) gocv.Mat {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 160, 165, 0), h, w, gocv.MatTypeCV8UC3)
	gocv.Rectangle(&m, image.Rect(0, h*3/4, w, h), color.RGBA{90, 95, 100, 0}, -1)
	gocv.Rectangle(&m, image.Rect(w/5, h/10, w*4/5, h*3/4), color.RGBA{60, 70, 80, 0}, 12)
	for x := 0; x < w; x += 64 {
		gocv.Line(&m, image.Pt(x, h*3/4), image.Pt(x+h/4, h), color.RGBA{110, 110, 115, 0}, 2)
	}
	gocv.PutText(&m, "EXIT", image.Pt(w-180, 60), gocv.FontHersheySimplex, 1.5, color.RGBA{40, 160, 40, 0}, 3)
	return m
}

// limitedBuffer keeps the first 4 KiB of ffmpeg's complaints.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

var errNoFFmpeg = errors.New("ffmpeg not found: install it (make deps)")
