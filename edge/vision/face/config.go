package face

import (
	_ "embed"

	"github.com/smartcommunity/warden/edge/config"
)

//go:embed sample.yaml
var sample []byte

// Options are the keys of a camera's detect.face section.
type Options struct {
	// DetectorModel is a YuNet ONNX file; empty: the Haar cascade Cascade.
	DetectorModel string `json:"detector_model" yaml:"detector_model"`
	// Cascade is the fallback detector (Haar or LBP XML).
	Cascade string `json:"cascade" yaml:"cascade"`
	// RecognizerModel is an embedding ONNX file taking aligned 112×112
	// crops (SFace in production); empty: LBPH on aligned grey crops.
	RecognizerModel string `json:"recognizer_model" yaml:"recognizer_model"`
	// RecognizerInput is how crops are fed to it: sface (raw pixels, what
	// OpenCV's FaceRecognizerSF does) or arcface ((p − 127.5)/128, RGB).
	RecognizerInput string `json:"recognizer_input" yaml:"recognizer_input"`
	// Threshold is the cosine similarity at or above which a face matches
	// (embedding models), calibrated in docs/face.md.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// LBPHThreshold is the largest LBPH chi-square distance that matches.
	LBPHThreshold float64 `json:"lbph_threshold" yaml:"lbph_threshold"`
	// DetectScore is YuNet's minimum confidence.
	DetectScore float64 `json:"detect_score" yaml:"detect_score"`
	// MinFacePx is the smallest face (box height, pixels) that is recognised.
	MinFacePx int `json:"min_face_px" yaml:"min_face_px"`
	// MinSharpness is the least Laplacian variance of the face crop.
	MinSharpness float64 `json:"min_sharpness" yaml:"min_sharpness"`
	// MaxYaw is the largest |nose offset from the eye midpoint| / eye
	// distance, a cheap pose gate from the landmarks (0 frontal).
	MaxYaw float64 `json:"max_yaw" yaml:"max_yaw"`
	// UnknownAfterFrames is how many consecutive unmatched good frames of a
	// track fire face.unknown.
	UnknownAfterFrames int `json:"unknown_after_frames" yaml:"unknown_after_frames"`
	// ConfirmFrames is how many matching frames of a track fire
	// face.recognized or face.watchlist.
	ConfirmFrames int `json:"confirm_frames" yaml:"confirm_frames"`
	// TrackLostSeconds ends a track not seen for this long.
	TrackLostSeconds float64 `json:"track_lost_seconds" yaml:"track_lost_seconds"`
	// KeyFile holds the gallery's AES-256 key (empty:
	// $CREDENTIALS_DIRECTORY/face-key).
	KeyFile string `json:"key_file" yaml:"key_file"`
	// GalleryDB is a warden.db to read the gallery from once at start when
	// the detector is not given the daemon's live gallery (warden analyze).
	GalleryDB string `json:"gallery_db" yaml:"gallery_db"`
	// DetectWidth: frames wider than this are scaled down for detection
	// (alignment still uses the full frame); 0 keeps full size.
	DetectWidth int `json:"detect_width" yaml:"detect_width"`
	// MaxFaces bounds faces handled per frame.
	MaxFaces int `json:"max_faces" yaml:"max_faces"`
}

// Defaults are the options of an empty detect.face section.
func Defaults() Options {
	return Options{
		Cascade:            "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
		RecognizerInput:    "sface",
		Threshold:          DefaultThreshold,
		LBPHThreshold:      80,
		DetectScore:        0.8,
		MinFacePx:          48,
		MinSharpness:       15,
		MaxYaw:             0.45,
		UnknownAfterFrames: 5,
		ConfirmFrames:      2,
		TrackLostSeconds:   1,
		MaxFaces:           10,
		DetectWidth:        640,
	}
}

// DefaultThreshold is the calibrated cosine threshold (docs/face.md).
const DefaultThreshold = 0.45

// ParseOptions decodes detect.face strictly; errors are *config.KeyError
// under prefix (e.g. "cameras[0].detect.face").
func ParseOptions(prefix string, sec *config.Section) (Options, error) {
	o := Defaults()
	if err := sec.Decode(prefix, &o); err != nil {
		return o, err
	}
	bad := func(key, format string, a ...any) (Options, error) {
		return o, config.Errorf(prefix, key, format, a...)
	}
	switch {
	case o.RecognizerInput != "sface" && o.RecognizerInput != "arcface":
		return bad("recognizer_input", "%q is not sface or arcface", o.RecognizerInput)
	case o.Threshold <= 0 || o.Threshold >= 1:
		return bad("threshold", "%v is outside (0, 1)", o.Threshold)
	case o.DetectScore <= 0 || o.DetectScore >= 1:
		return bad("detect_score", "%v is outside (0, 1)", o.DetectScore)
	case o.MinFacePx < 8:
		return bad("min_face_px", "%d is below 8", o.MinFacePx)
	case o.UnknownAfterFrames < 1:
		return bad("unknown_after_frames", "%d is below 1", o.UnknownAfterFrames)
	case o.ConfirmFrames < 1:
		return bad("confirm_frames", "%d is below 1", o.ConfirmFrames)
	case o.TrackLostSeconds <= 0:
		return bad("track_lost_seconds", "%v must be positive", o.TrackLostSeconds)
	case o.DetectWidth != 0 && o.DetectWidth < 64:
		return bad("detect_width", "%d is below 64", o.DetectWidth)
	case o.MaxFaces < 1:
		return bad("max_faces", "%d is below 1", o.MaxFaces)
	case o.MaxYaw <= 0:
		return bad("max_yaw", "%v must be positive", o.MaxYaw)
	}
	return o, nil
}
