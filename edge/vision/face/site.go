package face

import (
	"errors"
	"fmt"

	"github.com/smartcommunity/warden/edge/config"
)

// SiteOptions returns the face options that enrolment uses: those of the
// first camera with detect.face, since templates must come from the same
// models the cameras use. Every camera must name the same key_file and
// recognizer_model, or the gallery could not serve them all.
func SiteOptions(cams []config.Camera) (Options, error) {
	var first *Options
	var firstID string
	for _, c := range cams {
		if c.Detect.Face == nil {
			continue
		}
		o, err := ParseOptions("detect.face", c.Detect.Face)
		if err != nil {
			return Options{}, fmt.Errorf("camera %s: %w", c.ID, err)
		}
		if first == nil {
			first, firstID = &o, c.ID
			continue
		}
		if o.KeyFile != first.KeyFile {
			return Options{}, fmt.Errorf("camera %s: detect.face.key_file differs from camera %s's: the gallery has one key", c.ID, firstID)
		}
		if o.RecognizerModel != first.RecognizerModel || o.RecognizerInput != first.RecognizerInput {
			return Options{}, fmt.Errorf("camera %s: detect.face.recognizer_model differs from camera %s's: templates would not match", c.ID, firstID)
		}
	}
	if first == nil {
		return Options{}, errors.New("no camera has a detect.face section")
	}
	return *first, nil
}
