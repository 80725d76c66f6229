package face

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gocv.io/x/gocv"
)

// Reference faces for the start-up check: three people, two photos each
// (neutral, smiling), from the Face Research Lab London Set, CC BY 4.0
// (selfcheck/README.md).
//
//go:embed selfcheck/*.jpg
var selfcheckFS embed.FS

// Check is what the recogniser's start-up check measured.
type Check struct {
	Same, Diff []float64 // cosine of same-person and of different-person pairs
}

// MinSame and MaxDiff summarise the check.
func (c Check) MinSame() float64 { return slices.Min(c.Same) }
func (c Check) MaxDiff() float64 { return slices.Max(c.Diff) }

// selfCheck embeds the reference faces and refuses a recogniser that
// cannot tell them apart: different people at or above the match
// threshold, or not further apart than the same person's two photos. A
// wrong recognizer_input or model gives similarities near 1 for everyone,
// which would open the gate for any stranger.
func (e *Engine) selfCheck() (Check, error) {
	var c Check
	names, err := fs.Glob(selfcheckFS, "selfcheck/*.jpg")
	if err != nil || len(names) == 0 {
		return c, fmt.Errorf("self-check: no reference faces embedded")
	}
	type ref struct {
		person string
		vec    []float32
	}
	var refs []ref
	for _, n := range names {
		b, err := selfcheckFS.ReadFile(n)
		if err != nil {
			return c, err
		}
		img, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil || img.Empty() {
			return c, fmt.Errorf("self-check: %s does not decode", n)
		}
		faces, err := e.Detect(img)
		if err != nil || len(faces) != 1 {
			img.Close()
			return c, fmt.Errorf("self-check: %s: the detector finds %d faces, want 1 (%v): check detector_model", n, len(faces), err)
		}
		p, err := e.Embed(img, faces[0])
		img.Close()
		if err != nil {
			return c, fmt.Errorf("self-check: %s: %w", n, err)
		}
		p.Crop.Close()
		person, _, _ := strings.Cut(path.Base(n), "_")
		refs = append(refs, ref{person, p.Vec})
	}
	for i := range refs {
		for j := i + 1; j < len(refs); j++ {
			s := Cosine(refs[i].vec, refs[j].vec)
			if refs[i].person == refs[j].person {
				c.Same = append(c.Same, s)
			} else {
				c.Diff = append(c.Diff, s)
			}
		}
	}
	switch {
	case c.MaxDiff() >= e.opt.Threshold:
		return c, fmt.Errorf("self-check failed: two different reference people are at cosine %.2f, at or above the match threshold %.2f, so strangers would match residents: recognizer_input (%s) or recognizer_model is wrong for this model",
			c.MaxDiff(), e.opt.Threshold, e.opt.RecognizerInput)
	case c.MinSame() <= c.MaxDiff():
		return c, fmt.Errorf("self-check failed: the same reference person (cosine %.2f) is not closer than different people (%.2f): recognizer_input (%s) or recognizer_model is wrong",
			c.MinSame(), c.MaxDiff(), e.opt.RecognizerInput)
	}
	return c, nil
}

// SelfCheck is the start-up check's measurement (nil for LBPH, which has
// no embedding to check).
func (e *Engine) SelfCheck() *Check { return e.check }
