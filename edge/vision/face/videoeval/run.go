package videoeval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// Options of a run.
type Options struct {
	Face face.Options // the camera's detect.face (models, thresholds)
	Clip ClipOptions
	Dir  string // work folder: gallery, key and clip.mp4 are written here
	FPS  float64
	// Progress, when set, hears what the run is doing.
	Progress func(format string, args ...any)
}

// Outcome of one visit.
type Outcome string

const (
	Correct     Outcome = "correct"      // the resident, named right
	Wrong       Outcome = "wrong_person" // the resident, named as someone else
	Missed      Outcome = "missed"       // the resident, called unknown or not reported
	Rejected    Outcome = "rejected"     // a stranger, not named
	FalseAccept Outcome = "false_accept" // a stranger, named as a resident
)

// Scored is a visit with the events that fell in it.
type Scored struct {
	Visit
	Events  []Seen
	Outcome Outcome
}

// Seen is an event of a visit.
type Seen struct {
	Type, Person string
	At           time.Duration
}

// Result of a run.
type Result struct {
	Model          string
	Persons        int      // enrolled
	Templates      int      // enrolment photos accepted
	EnrolFailed    []string // photo: reason
	Visits         []Scored
	Counts         map[Outcome]int
	Genuine        int // resident visits
	Strangers      int // stranger visits
	Silent, Extra  int // visits with no event / more than one
	Stray          int // events outside any visit
	Clip           string
	Frames         int
	Detect         time.Duration  // time in the face detector
	Tracker        map[string]int // the detector's counts (tracks cut…)
	Identification float64        // Correct / Genuine
	FAR            float64        // FalseAccept / Strangers
}

// Run enrols set.Enrol into a fresh gallery, composes the clip of its
// visits and runs the camera's analyze path over it with the face detector
// reading that gallery, as `warden analyze` does.
func Run(ctx context.Context, set Set, o Options) (Result, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	r := Result{Counts: map[Outcome]int{}, Clip: filepath.Join(o.Dir, "clip.mp4")}
	eng, err := face.NewEngine(o.Face)
	if err != nil {
		return r, err
	}
	defer eng.Close()
	r.Model = eng.Model()
	fo, err := enrol(eng, set, o, &r)
	if err != nil {
		return r, err
	}
	progress("gallery: %d persons, %d templates (%d photos refused)", r.Persons, r.Templates, len(r.EnrolFailed))
	visits, err := Compose(ctx, eng, set.Visits, r.Clip, o.Clip)
	if err != nil {
		return r, err
	}
	progress("clip: %d visits, %s, %s", len(visits), visits[len(visits)-1].End.Round(time.Second), r.Clip)

	var det *face.Detector
	var evs []*event.Event
	cam := config.Camera{ID: "gate", Detect: config.Detect{FPS: o.FPS, Face: config.SectionOf(map[string]any{})}}
	fac := func(cam config.Camera) (vision.Detector, error) {
		d, err := face.NewDetector(cam.ID, fo, face.Deps{})
		det = d
		return d, err
	}
	err = camera.Analyze(ctx, camera.AnalyzeOptions{Gateway: "eval", Site: "eval", Camera: cam, Detectors: []vision.Factory{fac}}, r.Clip,
		func(e *event.Event) { evs = append(evs, e) })
	if err != nil {
		return r, err
	}
	r.Tracker, r.Detect = det.Counts(), det.Elapsed
	r.Frames = r.Tracker["face_frames"]
	score(&r, visits, evs)
	return r, nil
}

// enrol writes the set's residents into a gallery in o.Dir, as `warden
// enroll` does, and returns the face options that read it.
func enrol(eng *face.Engine, set Set, o Options, r *Result) (face.Options, error) {
	key := make([]byte, 32)
	rand.Read(key)
	fo := o.Face
	fo.KeyFile, fo.GalleryDB = filepath.Join(o.Dir, "face-key"), filepath.Join(o.Dir, "warden.db")
	if err := os.WriteFile(fo.KeyFile, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		return fo, err
	}
	os.Remove(fo.GalleryDB)
	db, err := bolt.Open(fo.GalleryDB, 0o600, nil)
	if err != nil {
		return fo, err
	}
	defer db.Close()
	g, err := gallery.Open(gallery.Options{DB: db, Key: key, Dir: filepath.Join(o.Dir, "faces")})
	if err != nil {
		return fo, err
	}
	persons := make([]string, 0, len(set.Enrol))
	for p := range set.Enrol {
		persons = append(persons, p)
	}
	slices.Sort(persons)
	for _, p := range persons {
		var tpls []gallery.Template
		for _, path := range set.Enrol[p] {
			b, err := os.ReadFile(path)
			if err != nil {
				return fo, err
			}
			t, err := eng.Template(b, filepath.Base(path))
			if err != nil {
				r.EnrolFailed = append(r.EnrolFailed, fmt.Sprintf("%s: %v", path, err))
				continue
			}
			tpls = append(tpls, t)
		}
		if len(tpls) == 0 {
			continue // their visits count as misses
		}
		if _, err := g.Enroll("eval", gallery.Person{ID: p, Name: p}, tpls); err != nil {
			return fo, fmt.Errorf("enrol %s: %w", p, err)
		}
		r.Persons++
		r.Templates += len(tpls)
	}
	return fo, nil
}

// score gives each event to the visit in view when it fired (or the one
// just gone: the gap after a visit is its tail) and judges every visit.
func score(r *Result, visits []Visit, evs []*event.Event) {
	r.Visits = make([]Scored, len(visits))
	for i, v := range visits {
		r.Visits[i].Visit = v
	}
	epoch := time.Unix(0, 0)
	for _, e := range evs {
		t := e.Time.Sub(epoch)
		i, _ := slices.BinarySearchFunc(visits, t, func(v Visit, t time.Duration) int {
			if v.Start <= t {
				return -1
			}
			return 1
		})
		if i == 0 {
			r.Stray++
			continue
		}
		id, _ := e.Data["person_id"].(string)
		r.Visits[i-1].Events = append(r.Visits[i-1].Events, Seen{Type: e.Type, Person: id, At: t})
	}
	for i := range r.Visits {
		s := &r.Visits[i]
		named := map[string]bool{}
		for _, ev := range s.Events {
			if ev.Type == event.FaceRecognized || ev.Type == event.FaceWatchlist {
				named[ev.Person] = true
			}
		}
		switch {
		case s.Role == Stranger && len(named) > 0:
			s.Outcome = FalseAccept
		case s.Role == Stranger:
			s.Outcome = Rejected
		case named[s.Person] && len(named) == 1:
			s.Outcome = Correct
		case len(named) > 0:
			s.Outcome = Wrong
		default:
			s.Outcome = Missed
		}
		r.Counts[s.Outcome]++
		if s.Role == Stranger {
			r.Strangers++
		} else {
			r.Genuine++
		}
		switch len(s.Events) {
		case 0:
			r.Silent++
		case 1:
		default:
			r.Extra++
		}
	}
	if r.Genuine > 0 {
		r.Identification = float64(r.Counts[Correct]) / float64(r.Genuine)
	}
	if r.Strangers > 0 {
		r.FAR = float64(r.Counts[FalseAccept]) / float64(r.Strangers)
	}
}
