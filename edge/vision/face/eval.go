package face

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// EvalOptions describe an evaluation set. Either Dir holds one folder per
// person (enrol the first K images of each, test the rest), or EnrollDir
// and TestDir hold images named PERSON_*.ext (London: neutral and smiling).
// Every second person (natural order, from the second) is a stranger when
// Strangers is set: never enrolled, all their images are impostor probes.
type EvalOptions struct {
	Dir                string
	K                  int
	EnrollDir, TestDir string
	Strangers          bool
	Thresholds         []float64
}

// SweepRow is the outcome at one threshold.
type SweepRow struct {
	Threshold float64
	Accuracy  float64 // enrolled probes whose best match is right and passes
	FAR       float64 // stranger probes that pass for someone
}

// EvalResult is what Evaluate measured.
type EvalResult struct {
	Persons, Enrolled, Strangers int
	EnrolImages, EnrolFailed     []string // failures: image and reason
	Probes, StrangerProbes       int
	NoFace                       int // probes where no face was found (count as misses)
	Threshold                    float64
	Accuracy, FAR                float64
	Sweep                        []SweepRow
	PerFace                      time.Duration // detection + alignment + embedding, mean
	Faces                        int
}

type evalProbe struct {
	person string
	best   string
	score  float64
}

// Evaluate runs the engine over a data set.
func Evaluate(e *Engine, o Options, eo EvalOptions) (EvalResult, error) {
	enrol, test, err := evalSplit(eo)
	if err != nil {
		return EvalResult{}, err
	}
	persons := make([]string, 0, len(enrol))
	for p := range enrol {
		persons = append(persons, p)
	}
	for p := range test {
		if _, ok := enrol[p]; !ok {
			persons = append(persons, p)
		}
	}
	sort.Slice(persons, func(i, j int) bool { return natLess(persons[i], persons[j]) })
	var r EvalResult
	r.Persons = len(persons)
	stranger := map[string]bool{}
	if eo.Strangers {
		for i, p := range persons {
			if i%2 == 1 {
				stranger[p] = true
			}
		}
	}
	var gal []struct {
		person string
		vec    []float32
		grey   []byte
	}
	var spent time.Duration
	var lbphEntries []lbphItem
	for _, p := range persons {
		if stranger[p] {
			r.Strangers++
			test[p] = append(enrol[p], test[p]...)
			continue
		}
		r.Enrolled++
		for _, path := range enrol[p] {
			img := gocv.IMRead(path, gocv.IMReadColor)
			start := time.Now()
			t, err := e.TemplateMat(img, filepath.Base(path))
			spent += time.Since(start)
			img.Close()
			r.Faces++
			r.EnrolImages = append(r.EnrolImages, path)
			if err != nil {
				r.EnrolFailed = append(r.EnrolFailed, fmt.Sprintf("%s: %v", path, err))
				continue
			}
			gal = append(gal, struct {
				person string
				vec    []float32
				grey   []byte
			}{p, t.Vec, t.Grey})
			lbphEntries = append(lbphEntries, lbphItem{p, t.Grey})
		}
	}
	lb, err := newEvalLBPH(e, lbphEntries)
	if err != nil {
		return r, err
	}
	defer lb.close()
	var probes []evalProbe
	for _, p := range persons {
		for _, path := range test[p] {
			img := gocv.IMRead(path, gocv.IMReadColor)
			start := time.Now()
			faces, err := e.Detect(img)
			pr := evalProbe{person: p, score: -1}
			if err == nil && len(faces) > 0 {
				f := largest(faces)
				if pb, err := e.Embed(img, f); err == nil {
					spent += time.Since(start)
					r.Faces++
					if pb.Vec != nil {
						for _, g := range gal {
							if s := Cosine(pb.Vec, g.vec); s > pr.score {
								pr.score, pr.best = s, g.person
							}
						}
					} else {
						pr.best, pr.score = lb.predict(pb.Grey)
					}
					pb.Crop.Close()
				}
			} else {
				r.NoFace++
			}
			img.Close()
			probes = append(probes, pr)
			if stranger[p] {
				r.StrangerProbes++
			} else {
				r.Probes++
			}
		}
	}
	if r.Faces > 0 {
		r.PerFace = spent / time.Duration(r.Faces)
	}
	score := func(thr float64) SweepRow {
		row := SweepRow{Threshold: thr}
		var ok, fa int
		for _, pr := range probes {
			pass := pr.score >= thr
			if stranger[pr.person] {
				if pass {
					fa++
				}
			} else if pass && pr.best == pr.person {
				ok++
			}
		}
		if r.Probes > 0 {
			row.Accuracy = float64(ok) / float64(r.Probes)
		}
		if r.StrangerProbes > 0 {
			row.FAR = float64(fa) / float64(r.StrangerProbes)
		}
		return row
	}
	r.Threshold = o.Threshold
	if e.Model() == "lbph" {
		r.Threshold = 1 - o.LBPHThreshold/100
	}
	main := score(r.Threshold)
	r.Accuracy, r.FAR = main.Accuracy, main.FAR
	for _, t := range eo.Thresholds {
		r.Sweep = append(r.Sweep, score(t))
	}
	return r, nil
}

func largest(fs []Face) Face {
	b := fs[0]
	for _, f := range fs[1:] {
		if f.Box.Dx()*f.Box.Dy() > b.Box.Dx()*b.Box.Dy() {
			b = f
		}
	}
	return b
}

var imageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".pgm": true, ".bmp": true}

func images(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && imageExt[strings.ToLower(filepath.Ext(e.Name()))] {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return natLess(filepath.Base(out[i]), filepath.Base(out[j])) })
	return out, nil
}

func evalSplit(eo EvalOptions) (enrol, test map[string][]string, err error) {
	enrol, test = map[string][]string{}, map[string][]string{}
	if eo.Dir != "" {
		ents, err := os.ReadDir(eo.Dir)
		if err != nil {
			return nil, nil, err
		}
		k := max(eo.K, 1)
		for _, d := range ents {
			if !d.IsDir() {
				continue
			}
			imgs, err := images(filepath.Join(eo.Dir, d.Name()))
			if err != nil {
				return nil, nil, err
			}
			if len(imgs) <= k {
				continue
			}
			enrol[d.Name()], test[d.Name()] = imgs[:k], imgs[k:]
		}
		return enrol, test, nil
	}
	for _, pair := range []struct {
		dir string
		m   map[string][]string
	}{{eo.EnrollDir, enrol}, {eo.TestDir, test}} {
		imgs, err := images(pair.dir)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range imgs {
			id, _, _ := strings.Cut(filepath.Base(p), "_")
			pair.m[id] = append(pair.m[id], p)
		}
	}
	return enrol, test, nil
}

// natLess orders s2 before s10.
func natLess(a, b string) bool {
	na, ea := strconv.Atoi(strings.TrimLeft(a, "abcdefghijklmnopqrstuvwxyz_"))
	nb, eb := strconv.Atoi(strings.TrimLeft(b, "abcdefghijklmnopqrstuvwxyz_"))
	if ea == nil && eb == nil && na != nb {
		return na < nb
	}
	return a < b
}
