// Package vision is the seam between the camera pipeline and the detectors:
// the camera decodes frames and hands them to every Detector of the camera;
// what a detector returns becomes an event. Face, throw and motion detectors
// all plug in here, for live cameras and for `warden analyze` alike.
package vision

import (
	"fmt"
	"image"
	"image/color"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Frame is one decoded image: BGR, or the stream's luma plane alone (one
// channel, limited range 16–235) when every detector of the camera is
// LumaOnly. Mat belongs to the caller and is only valid during Detect; a
// detector that keeps pixels must Clone them.
type Frame struct {
	Mat gocv.Mat
	// PTS is the time since the start of the stream (or file): the timeline
	// that detectors must use for debouncing and tracking, never Wall.
	PTS time.Duration
	// Wall is when the frame was received; in analyze it is the video
	// timeline mapped onto --start.
	Wall time.Time
	// Seq counts analysed frames of this camera from 0.
	Seq int
	// Damaged: the decoder reported errors on this frame or less than a
	// second before it, so parts of the picture may be garbage (a broken
	// reference smears into the frames after it). Before the camera is
	// found degraded, a detector may still see such frames.
	Damaged bool
}

// Detection is something a detector saw; the camera turns it into an event
// of Type with its Data, plus media when Snapshot or Clip is set.
type Detection struct {
	Type     string
	Severity event.Severity // empty: the type's default
	Data     map[string]any
	// BBox is drawn on the snapshot; empty means none.
	BBox image.Rectangle
	// Snapshot asks for a JPEG of this frame, Clip for an MP4 of the record
	// stream around it (record.pre_seconds before, post_seconds after).
	Snapshot, Clip bool
	// Images are pictures the detector made itself (a throw's trajectory
	// drawn on the frame, a face crop); each is stored as media of its Kind
	// and referenced from the event.
	Images []Image
	// Key names the detection so that a later one can add to its event.
	// Refines, set instead of Type, makes this a later one: its Images
	// (better evidence found after the event went out, like the best face
	// of a visit) join the event of the detection keyed Refines as a
	// media.added event.
	Key, Refines string
}

// Image is an encoded picture a detector attaches to its detection.
type Image struct {
	Kind        string // trajectory, crop, …
	ContentType string // image/jpeg when empty
	Data        []byte
	// URL, when set, says the picture is already kept elsewhere (a face
	// crop sealed by the gallery): the event names it there and Data is
	// not written again, so no plaintext copy reaches the disk.
	URL string
}

// Detector analyses the frames of one camera, in order, from one goroutine.
type Detector interface {
	Detect(f Frame) []Detection
	Close()
}

// LumaOnly is a Detector that reads brightness alone. A camera whose
// detectors all are gets the decoded luma plane as its frames and converts
// to colour only for pictures (the API's snapshot, an event's), which
// spares a full-size colour conversion per analysed frame.
type LumaOnly interface {
	LumaOnly() bool
}

// AllLumaOnly reports whether every detector reads brightness alone
// (false for none: a camera with no detector needs no frames).
func AllLumaOnly(dets []Detector) bool {
	for _, d := range dets {
		if l, ok := d.(LumaOnly); !ok || !l.LumaOnly() {
			return false
		}
	}
	return len(dets) > 0
}

// Counting is a Detector that counts what it does: Counts returns running
// totals by name (prefixed with the detector, e.g. "throw_suspensions").
// The camera exports them as warden_camera_detector_counts_total.
type Counting interface {
	Counts() map[string]int
}

// Factory builds a detector for a camera. It returns (nil, nil) when the
// camera's config does not enable it (its detect section is absent).
type Factory func(cam config.Camera) (Detector, error)

// Open builds every enabled detector of cam; on error the ones already built
// are closed.
func Open(cam config.Camera, factories ...Factory) ([]Detector, error) {
	var out []Detector
	for _, f := range factories {
		d, err := f(cam)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		if d != nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// BBoxList renders a rectangle as [x, y, w, h], the contract's bbox shape.
func BBoxList(r image.Rectangle) []int {
	return []int{r.Min.X, r.Min.Y, r.Dx(), r.Dy()}
}

// Shift moves src by (dx, dy) pixels into dst (bilinear, edges
// replicated): camera shake in the scene generator and its compensation
// in the throw detector.
func Shift(src gocv.Mat, dst *gocv.Mat, dx, dy float64) {
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	m.SetDoubleAt(0, 0, 1)
	m.SetDoubleAt(0, 2, dx)
	m.SetDoubleAt(1, 1, 1)
	m.SetDoubleAt(1, 2, dy)
	gocv.WarpAffineWithParams(src, dst, m, image.Pt(src.Cols(), src.Rows()), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
}

// SnapshotJPEG encodes m with box (when not empty) drawn.
func SnapshotJPEG(m gocv.Mat, box image.Rectangle) ([]byte, error) {
	img := m.Clone()
	defer img.Close()
	if !box.Empty() {
		gocv.Rectangle(&img, box, color.RGBA{R: 255, A: 255}, 2)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, fmt.Errorf("snapshot: jpeg: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
