package face

import (
	"fmt"
	"math"

	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/vision/face/cv"
)

// Matcher compares probes with the gallery's templates of one model.
type Matcher struct {
	model     string
	thr       float64
	lbphThr   float64
	entries   []gallery.Entry
	lbph      *cv.LBPH
	byLabel   []gallery.Person
	templates int
}

// NewMatcher keeps the entries of model (templates of another model are
// ignored: they live in another embedding space).
func NewMatcher(model string, o Options, entries []gallery.Entry) (*Matcher, error) {
	m := &Matcher{model: model, thr: o.Threshold, lbphThr: o.LBPHThreshold}
	var imgs [][]byte
	var labels []int32
	label := map[string]int32{}
	for _, e := range entries {
		if e.Template.Model != model {
			continue
		}
		m.templates++
		if model != "lbph" {
			m.entries = append(m.entries, e)
			continue
		}
		if len(e.Template.Grey) != LBPHSide*LBPHSide {
			continue
		}
		l, ok := label[e.Person.ID]
		if !ok {
			l = int32(len(m.byLabel))
			label[e.Person.ID] = l
			m.byLabel = append(m.byLabel, e.Person)
		}
		imgs = append(imgs, e.Template.Grey)
		labels = append(labels, l)
	}
	if model == "lbph" && len(imgs) > 0 {
		l, err := cv.NewLBPH()
		if err != nil {
			return nil, err
		}
		if err := l.Train(imgs, labels, LBPHSide, LBPHSide); err != nil {
			l.Close()
			return nil, fmt.Errorf("face: train lbph: %w", err)
		}
		m.lbph = l
	}
	return m, nil
}

// Templates is how many templates of this model are loaded.
func (m *Matcher) Templates() int { return m.templates }

// Close frees the LBPH model.
func (m *Matcher) Close() { m.lbph.Close() }

// Best returns the closest person and the score: cosine similarity for
// embeddings, 1 - distance/100 (floored at 0) for LBPH. ok says the score
// passes the threshold.
func (m *Matcher) Best(p Probe) (person gallery.Person, score float64, ok bool) {
	if m.lbph != nil && p.Grey != nil {
		l, d, err := m.lbph.Predict(p.Grey, LBPHSide, LBPHSide)
		if err != nil || l < 0 || int(l) >= len(m.byLabel) {
			return gallery.Person{}, 0, false
		}
		return m.byLabel[l], math.Max(0, 1-d/100), d <= m.lbphThr
	}
	score = -1
	for _, e := range m.entries {
		if s := Cosine(p.Vec, e.Template.Vec); s > score {
			score, person = s, e.Person
		}
	}
	if score < 0 {
		return gallery.Person{}, math.Max(score, 0), false
	}
	return person, score, score >= m.thr
}
