package gallery

import (
	"errors"
	"fmt"
	"math"
)

// ErrLooksLikeOther refuses a photo that matches another enrolled person
// better than the person it is enrolled for: it would make the recogniser
// name the wrong resident (or a watch-listed man a resident).
var ErrLooksLikeOther = errors.New("looks like another enrolled person")

// CheckConflicts refuses tpls (for person id) when one of them is at or
// above threshold (cosine) to another person's template and closer to it
// than to any template of id, stored or among tpls. Templates without an
// embedding (LBPH) are not compared.
func (g *Gallery) CheckConflicts(id string, tpls []Template, threshold float64) error {
	entries, err := g.Entries()
	if err != nil {
		return err
	}
	for i, t := range tpls {
		if len(t.Vec) == 0 {
			continue
		}
		own := math.Inf(-1)
		for j, u := range tpls {
			if j != i && u.Model == t.Model {
				own = max(own, cosine(t.Vec, u.Vec))
			}
		}
		other, who := math.Inf(-1), ""
		for _, e := range entries {
			if e.Template.Model != t.Model || len(e.Template.Vec) == 0 {
				continue
			}
			c := cosine(t.Vec, e.Template.Vec)
			if e.Person.ID == id {
				own = max(own, c)
			} else if c > other {
				other, who = c, e.Person.ID
			}
		}
		if other >= threshold && other > own {
			ownText := "no other photo of " + id
			if !math.IsInf(own, -1) {
				ownText = fmt.Sprintf("%.2f to %s", own, id)
			}
			return fmt.Errorf("%s: cosine %.2f to %s, %s: %w", t.Source, other, who, ownText, ErrLooksLikeOther)
		}
	}
	return nil
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(-1)
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
