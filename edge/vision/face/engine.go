// Package face recognises faces at entrances: detection (YuNet, or a Haar
// cascade), five-landmark alignment to 112×112, embedding (any SFace-style
// ONNX model, or LBPH), matching against the gallery, and a tracker that
// turns one person walking past into one event.
package face

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/vision/face/cv"
)

// Face is a detected face.
type Face struct {
	Box       image.Rectangle
	Score     float32
	Landmarks bool // false for cascade detections
	raw       cv.Face
}

// Probe is what recognition needs from one face.
type Probe struct {
	Vec       []float32 // embedding (normalised), nil with LBPH
	Grey      []byte    // LBPHSide² aligned grey crop
	Crop      gocv.Mat  // aligned 112×112 BGR crop; Close it
	Sharpness float64   // Laplacian variance of the crop
	Yaw       float64   // nose offset / eye distance (0 for cascade faces)
}

// LBPHSide is the side of LBPH crops.
const LBPHSide = 64

// Engine detects and embeds faces. Not safe for concurrent use.
type Engine struct {
	opt     Options
	yunet   *cv.YuNet
	cascade *gocv.CascadeClassifier
	sface   *cv.SFace
	model   string // template model id
	check   *Check // the start-up self-check, with an embedding model
}

// NewEngine loads the configured models; a missing, corrupt or unsupported
// model is an error naming it.
func NewEngine(o Options) (*Engine, error) {
	e := &Engine{opt: o, model: "lbph"}
	if o.DetectorModel != "" {
		y, err := cv.NewYuNet(o.DetectorModel, float32(o.DetectScore), 0.3)
		if err != nil {
			return nil, fmt.Errorf("detect.face.detector_model: %w", err)
		}
		e.yunet = y
	} else {
		if _, err := os.Stat(o.Cascade); err != nil {
			return nil, fmt.Errorf("detect.face.cascade: %w", err)
		}
		c := gocv.NewCascadeClassifier()
		if !c.Load(o.Cascade) {
			c.Close()
			return nil, fmt.Errorf("detect.face.cascade: %s is not a cascade", o.Cascade)
		}
		e.cascade = &c
	}
	if o.RecognizerModel != "" {
		in := cv.Input{}
		if o.RecognizerInput == "arcface" {
			in = cv.ArcFaceInput
		}
		s, err := cv.NewSFace(o.RecognizerModel, in)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("detect.face.recognizer_model: %w", err)
		}
		e.sface = s
		id, err := fileID(o.RecognizerModel)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("detect.face.recognizer_model: %w", err)
		}
		e.model = id
		c, err := e.selfCheck()
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("detect.face: %w", err)
		}
		e.check = &c
	}
	return e, nil
}

func fileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Threshold is the cosine at or above which a face matches (the gallery
// refuses an enrolment photo that matches another person).
func (e *Engine) Threshold() float64 { return e.opt.Threshold }

// Model identifies the template space (the embedding model's sha256
// prefix, or "lbph").
func (e *Engine) Model() string { return e.model }

// Close frees the models.
func (e *Engine) Close() {
	e.yunet.Close()
	e.sface.Close()
	if e.cascade != nil {
		e.cascade.Close()
		e.cascade = nil
	}
}

// Detect finds faces in a BGR frame.
func (e *Engine) Detect(img gocv.Mat) ([]Face, error) {
	if e.yunet != nil {
		src, k := img, float32(1)
		if w := e.opt.DetectWidth; w > 0 && img.Cols() > w {
			k = float32(img.Cols()) / float32(w)
			small := gocv.NewMat()
			defer small.Close()
			gocv.Resize(img, &small, image.Pt(w, int(float32(img.Rows())/k)), 0, 0, gocv.InterpolationArea)
			src = small
		}
		fs, err := e.yunet.Detect(src, e.opt.MaxFaces)
		if err != nil {
			return nil, err
		}
		if k != 1 {
			for i := range fs {
				for j := 0; j < 14; j++ {
					fs[i].Row[j] *= k
				}
			}
		}
		out := make([]Face, 0, len(fs))
		for _, f := range fs {
			x, y, w, h := f.Box()
			r := image.Rect(int(x), int(y), int(x+w), int(y+h)).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
			if r.Empty() {
				continue
			}
			out = append(out, Face{Box: r, Score: f.Score(), Landmarks: true, raw: f})
		}
		return out, nil
	}
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(img, &grey, gocv.ColorBGRToGray)
	gocv.EqualizeHist(grey, &grey)
	rs := e.cascade.DetectMultiScaleWithParams(grey, 1.1, 5, 0, image.Pt(e.opt.MinFacePx/2, e.opt.MinFacePx/2), image.Pt(0, 0))
	out := make([]Face, 0, len(rs))
	for _, r := range rs {
		if len(out) == e.opt.MaxFaces {
			break
		}
		out = append(out, Face{Box: r, Score: 1})
	}
	return out, nil
}

// arcface reference landmarks in a 112×112 crop (what alignCrop uses).
var arcface = [5][2]float32{{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}}

// align gives the 112×112 crop: FaceRecognizerSF::alignCrop when a model
// is loaded, the same similarity transform otherwise, or the padded box for
// cascade faces.
func (e *Engine) align(img gocv.Mat, f Face) (gocv.Mat, error) {
	if f.Landmarks && e.sface != nil {
		b, err := e.sface.Align(img, f.raw)
		if err != nil {
			return gocv.NewMat(), err
		}
		return gocv.NewMatFromBytes(cv.CropSize, cv.CropSize, gocv.MatTypeCV8UC3, b)
	}
	out := gocv.NewMat()
	if f.Landmarks {
		var sp, dp []gocv.Point2f
		for i := 0; i < 5; i++ {
			x, y := f.raw.Landmark(i)
			sp = append(sp, gocv.Point2f{X: x, Y: y})
			dp = append(dp, gocv.Point2f{X: arcface[i][0], Y: arcface[i][1]})
		}
		src, dst := gocv.NewPoint2fVectorFromPoints(sp), gocv.NewPoint2fVectorFromPoints(dp)
		defer src.Close()
		defer dst.Close()
		m := gocv.EstimateAffinePartial2D(src, dst)
		defer m.Close()
		if m.Empty() {
			return out, errors.New("align: no transform from landmarks")
		}
		gocv.WarpAffine(img, &out, m, image.Pt(cv.CropSize, cv.CropSize))
		return out, nil
	}
	// Cascade boxes are tight: widen a little, like the landmark crops.
	r := f.Box
	pad := r.Dx() / 8
	r = image.Rect(r.Min.X-pad, r.Min.Y-pad, r.Max.X+pad, r.Max.Y+pad).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	roi := img.Region(r)
	defer roi.Close()
	gocv.Resize(roi, &out, image.Pt(cv.CropSize, cv.CropSize), 0, 0, gocv.InterpolationLinear)
	return out, nil
}

// Yaw is a cheap pose measure from the landmarks: the nose tip's horizontal
// offset from the eye midpoint over the eye distance.
func (f Face) Yaw() float64 {
	if !f.Landmarks {
		return 0
	}
	rx, _ := f.raw.Landmark(0)
	lx, _ := f.raw.Landmark(1)
	nx, _ := f.raw.Landmark(2)
	d := math.Abs(float64(lx - rx))
	if d < 1 {
		return 9
	}
	return math.Abs(float64(nx)-float64(lx+rx)/2) / d
}

// Embed aligns and embeds one face.
func (e *Engine) Embed(img gocv.Mat, f Face) (Probe, error) {
	crop, err := e.align(img, f)
	if err != nil {
		crop.Close()
		return Probe{}, err
	}
	p := Probe{Crop: crop, Yaw: f.Yaw()}
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(crop, &grey, gocv.ColorBGRToGray)
	lap := gocv.NewMat()
	defer lap.Close()
	gocv.Laplacian(grey, &lap, gocv.MatTypeCV64F, 1, 1, 0, gocv.BorderDefault)
	mean, std := gocv.NewMat(), gocv.NewMat()
	gocv.MeanStdDev(lap, &mean, &std)
	p.Sharpness = math.Pow(std.GetDoubleAt(0, 0), 2)
	mean.Close()
	std.Close()
	if e.sface != nil {
		v, err := e.sface.Feature(crop.ToBytes())
		if err != nil {
			crop.Close()
			return Probe{}, err
		}
		p.Vec = normalize(v)
		return p, nil
	}
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(grey, &small, image.Pt(LBPHSide, LBPHSide), 0, 0, gocv.InterpolationArea)
	gocv.EqualizeHist(small, &small)
	p.Grey = small.ToBytes()
	return p, nil
}

func normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := float32(math.Sqrt(s))
	if n == 0 {
		return v
	}
	for i := range v {
		v[i] /= n
	}
	return v
}

// Cosine of two normalised vectors.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return -1
	}
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return float64(s)
}

// Template makes an enrolment template from an encoded image: exactly one
// face of enough size and quality, or an error saying what is wrong.
func (e *Engine) Template(data []byte, source string) (gallery.Template, error) {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return gallery.Template{}, errors.New("not a decodable image")
	}
	defer img.Close()
	return e.TemplateMat(img, source)
}

// TemplateMat is Template on a decoded BGR image.
func (e *Engine) TemplateMat(img gocv.Mat, source string) (gallery.Template, error) {
	q, p, err := e.inspect(img)
	if err != nil {
		return gallery.Template{}, err
	}
	if q.Faces == 1 {
		defer p.Crop.Close()
	}
	if err := q.problem(e.opt); err != nil {
		return gallery.Template{}, err
	}
	jpg, err := gocv.IMEncode(gocv.JPEGFileExt, p.Crop)
	if err != nil {
		return gallery.Template{}, fmt.Errorf("encode crop: %w", err)
	}
	defer jpg.Close()
	return gallery.Template{Model: e.model, Vec: p.Vec, Grey: p.Grey, Crop: append([]byte(nil), jpg.GetBytes()...), Source: source}, nil
}

// Quality is what the enrolment gate measured on a photo.
type Quality struct {
	Faces     int     // faces found (after the padded retry)
	FacePx    int     // face height in the photo
	Sharpness float64 // Laplacian variance of the aligned crop
	Yaw       float64
	Padded    bool  // found only on the bordered copy (a tight crop)
	Refused   error // why enrolment would refuse the photo; nil: accepted
}

// problem is why the gate refuses q, or nil.
func (q Quality) problem(o Options) error {
	switch {
	case q.Faces == 0:
		return errors.New("no face found")
	case q.Faces > 1:
		return fmt.Errorf("%d faces found, want exactly one", q.Faces)
	case q.FacePx < o.MinFacePx:
		return fmt.Errorf("face too small: %d px high, want at least %d (min_face_px)", q.FacePx, o.MinFacePx)
	case q.Sharpness < o.MinSharpness:
		return fmt.Errorf("face too blurred: sharpness %.1f, want at least %.1f (min_sharpness)", q.Sharpness, o.MinSharpness)
	case q.Yaw > o.MaxYaw:
		return fmt.Errorf("face turned away: yaw %.2f, want at most %.2f (max_yaw)", q.Yaw, o.MaxYaw)
	}
	return nil
}

// Inspect measures a photo the way enrolment does, without enrolling it.
func (e *Engine) Inspect(data []byte) (Quality, error) {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return Quality{}, errors.New("not a decodable image")
	}
	defer img.Close()
	q, p, err := e.inspect(img)
	if err != nil {
		return q, err
	}
	if q.Faces == 1 {
		p.Crop.Close()
	}
	q.Refused = q.problem(e.opt)
	return q, nil
}

// inspect detects (retrying on a bordered, doubled copy: a tight crop such
// as an ID photo leaves the detector no context) and, with one face,
// embeds it; the caller closes p.Crop when q.Faces == 1.
func (e *Engine) inspect(img gocv.Mat) (q Quality, p Probe, err error) {
	faces, err := e.Detect(img)
	if err != nil {
		return q, p, err
	}
	if len(faces) == 0 {
		padded := padForDetection(img)
		defer padded.Close()
		if faces, err = e.Detect(padded); err != nil {
			return q, p, err
		}
		img, q.Padded = padded, true
	}
	q.Faces = len(faces)
	if q.Faces != 1 {
		return q, p, nil
	}
	f := faces[0]
	q.FacePx = f.Box.Dy()
	if q.Padded {
		q.FacePx /= 2 // in the photo, not the doubled copy
	}
	if p, err = e.Embed(img, f); err != nil {
		return q, p, err
	}
	q.Sharpness, q.Yaw = p.Sharpness, p.Yaw
	return q, p, nil
}

// Locate is the box of the largest face in img, found the way enrolment
// finds it (with the bordered retry), in img's coordinates.
func (e *Engine) Locate(img gocv.Mat) (image.Rectangle, bool, error) {
	faces, err := e.Detect(img)
	if err != nil {
		return image.Rectangle{}, false, err
	}
	if len(faces) > 0 {
		return largest(faces).Box, true, nil
	}
	padded := padForDetection(img)
	defer padded.Close()
	if faces, err = e.Detect(padded); err != nil || len(faces) == 0 {
		return image.Rectangle{}, false, err
	}
	b := largest(faces).Box
	off := image.Pt(img.Cols()/4, img.Rows()/4)
	return image.Rectangle{Min: b.Min.Div(2).Sub(off), Max: b.Max.Div(2).Sub(off)}, true, nil
}

// padForDetection adds a quarter of the image on every side (edge pixels
// repeated) and doubles the result.
func padForDetection(img gocv.Mat) gocv.Mat {
	bordered := gocv.NewMat()
	defer bordered.Close()
	py, px := img.Rows()/4, img.Cols()/4
	gocv.CopyMakeBorder(img, &bordered, py, py, px, px, gocv.BorderReplicate, color.RGBA{})
	out := gocv.NewMat()
	gocv.Resize(bordered, &out, image.Pt(bordered.Cols()*2, bordered.Rows()*2), 0, 0, gocv.InterpolationCubic)
	return out
}
