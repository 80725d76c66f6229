package face

import (
	"fmt"
	"image"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/vision"
)

func init() {
	vision.Register(vision.Plugin{Name: "face", Order: 2, New: New, Check: vision.SectionCheck("face", ParseOptions),
		Options: Options{}, Sample: sample})
}

// Deps are what the detector needs from the gateway.
type Deps struct {
	// Gallery is the live gallery (the daemon's); nil: detect.face.gallery_db
	// is read once, or every face is unknown.
	Gallery *gallery.Gallery
	Log     *slog.Logger
}

// New is the registered factory: no live gallery (the gateway replaces it
// with Factory and its gallery).
func New(cam config.Camera) (vision.Detector, error) { return Factory(Deps{})(cam) }

// Factory builds the face detector of a camera when detect.face is present.
func Factory(d Deps) vision.Factory {
	return func(cam config.Camera) (vision.Detector, error) {
		if cam.Detect.Face == nil {
			return nil, nil
		}
		o, err := ParseOptions("detect.face", cam.Detect.Face)
		if err != nil {
			return nil, fmt.Errorf("camera %s: %w", cam.ID, err)
		}
		det, err := NewDetector(cam.ID, o, d)
		if err != nil {
			return nil, fmt.Errorf("camera %s: %w", cam.ID, err)
		}
		return det, nil
	}
}

// Detector tracks faces of one camera and emits one event per person
// passing: face.recognized, face.watchlist (critical) or face.unknown.
type Detector struct {
	cam     string
	opt     Options
	eng     *Engine
	gal     *gallery.Gallery
	match   *Matcher
	ver     uint64
	static  []gallery.Entry // from gallery_db, when there is no live gallery
	log     *slog.Logger
	tracks  []*track
	nextID  int
	seq     uint64        // this detector among all, for detection keys
	Elapsed time.Duration // time spent in Detect, for benchmarks
	counts  map[string]int
}

// Counts implements vision.Counting: what an installer checks when a
// camera gives no face events (no faces found, too small, too blurred).
func (d *Detector) Counts() map[string]int { return maps.Clone(d.counts) }

type track struct {
	id        int
	box       image.Rectangle
	last      time.Duration
	unmatched int
	hits      map[string]int
	best      map[string]float64 // best score per person
	persons   map[string]gallery.Person
	bestQ     float64
	bestBox   image.Rectangle
	scene     gocv.Mat  // the frame of the best face so far (empty before one)
	sceneAt   time.Time // its wall time
	bestScore float64   // best unmatched score, for face.unknown
	emitted   string    // the event type given, "" before
	emittedQ  float64   // bestQ when it was given
	tmpl      []float32 // running mean of the track's embeddings: who it is
}

// detectorSeq numbers detectors so that detection keys never repeat
// across sessions of a camera.
var detectorSeq atomic.Uint64

// NewDetector loads the models (and the gallery snapshot of gallery_db).
func NewDetector(camID string, o Options, d Deps) (*Detector, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	eng, err := NewEngine(o)
	if err != nil {
		return nil, err
	}
	det := &Detector{cam: camID, opt: o, eng: eng, gal: d.Gallery, log: d.Log.With("component", "face", "camera", camID), counts: map[string]int{}, seq: detectorSeq.Add(1)}
	if d.Gallery == nil && o.GalleryDB != "" {
		if det.static, err = ReadGallery(o); err != nil {
			eng.Close()
			return nil, err
		}
	}
	if err := det.reload(); err != nil {
		eng.Close()
		return nil, err
	}
	return det, nil
}

// ReadGallery reads the gallery of o.GalleryDB once, read-only (warden
// analyze); the daemon must not hold the file.
func ReadGallery(o Options) ([]gallery.Entry, error) {
	key, err := gallery.LoadKey(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("detect.face.key_file: %w", err)
	}
	db, err := bolt.Open(o.GalleryDB, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("detect.face.gallery_db %s: %w (is the daemon running?)", o.GalleryDB, err)
	}
	defer db.Close()
	g, err := gallery.Open(gallery.Options{DB: db, Key: key})
	if err != nil {
		return nil, fmt.Errorf("detect.face.gallery_db %s: %w", o.GalleryDB, err)
	}
	return g.Entries()
}

func (d *Detector) reload() error {
	entries := d.static
	if d.gal != nil {
		d.ver = d.gal.Version()
		var err error
		if entries, err = d.gal.Entries(); err != nil {
			return err
		}
	}
	m, err := NewMatcher(d.eng.Model(), d.opt, entries)
	if err != nil {
		return err
	}
	if d.match != nil {
		d.match.Close()
	}
	d.match = m
	d.log.Info("face gallery loaded", "templates", m.Templates(), "model", d.eng.Model())
	return nil
}

// Close frees the models.
func (d *Detector) Close() {
	for _, t := range d.tracks {
		t.scene.Close()
	}
	d.tracks = nil
	d.eng.Close()
	if d.match != nil {
		d.match.Close()
	}
}

func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}

func centreDist(a, b image.Rectangle) float64 {
	ca := a.Min.Add(a.Max).Div(2)
	cb := b.Min.Add(b.Max).Div(2)
	dx, dy := float64(ca.X-cb.X), float64(ca.Y-cb.Y)
	return dx*dx + dy*dy
}

// assign pairs faces with tracks greedily by IoU, then by centre distance
// (within one face width), and opens tracks for the rest.
func (d *Detector) assign(faces []Face, pts time.Duration) []*track {
	out := make([]*track, len(faces))
	used := map[*track]bool{}
	for pass := 0; pass < 2; pass++ {
		for i, f := range faces {
			if out[i] != nil {
				continue
			}
			var best *track
			bestV := 0.0
			for _, t := range d.tracks {
				if used[t] {
					continue
				}
				if pass == 0 {
					if v := iou(f.Box, t.box); v > 0.2 && v > bestV {
						best, bestV = t, v
					}
				} else {
					w := float64(max(f.Box.Dx(), t.box.Dx()))
					if v := centreDist(f.Box, t.box); v < w*w && (best == nil || v < bestV) {
						best, bestV = t, v
					}
				}
			}
			if best != nil {
				out[i], used[best] = best, true
			}
		}
	}
	for i := range faces {
		if out[i] == nil {
			out[i] = d.newTrack()
		}
		out[i].box, out[i].last = faces[i].Box, pts
	}
	return out
}

func (d *Detector) newTrack() *track {
	d.nextID++
	t := &track{id: d.nextID, hits: map[string]int{}, best: map[string]float64{}, persons: map[string]gallery.Person{}, scene: gocv.NewMat()}
	d.tracks = append(d.tracks, t)
	return t
}

// sameIdentity reports whether vec is the person the track has seen so
// far; with no embedding (LBPH) or no history yet it is.
func (t *track) sameIdentity(vec []float32, threshold float64) bool {
	return len(vec) == 0 || t.tmpl == nil || Cosine(vec, t.tmpl) >= threshold
}

// learn adds vec to the track's running template.
func (t *track) learn(vec []float32) {
	if len(vec) == 0 {
		return
	}
	if t.tmpl == nil {
		t.tmpl = append([]float32(nil), vec...)
		return
	}
	for i := range t.tmpl {
		t.tmpl[i] = 0.8*t.tmpl[i] + 0.2*vec[i]
	}
	t.tmpl = normalize(t.tmpl)
}

// cut ends t (someone else stands where it was: a queue at a turnstile)
// and opens a new track in its place.
func (d *Detector) cut(t *track, box image.Rectangle, pts time.Duration) (*track, []vision.Detection) {
	d.counts["face_track_cuts"]++
	d.tracks = slices.DeleteFunc(d.tracks, func(x *track) bool { return x == t })
	n := d.newTrack()
	n.box, n.last = box, pts
	return n, d.end(t)
}

// key names the event of track t (see vision.Detection.Key).
func (d *Detector) key(t *track) string { return fmt.Sprintf("face/%d/%d", d.seq, t.id) }

// end closes a track that left. When its event went out before the
// person's best face, that face and its scene follow as a refinement.
func (d *Detector) end(t *track) []vision.Detection {
	defer t.scene.Close()
	if t.emitted == "" || t.bestQ < refineGain*t.emittedQ {
		return nil
	}
	d.counts["face_refined"]++
	return []vision.Detection{{Refines: d.key(t), Images: d.evidence(t, t.emitted, nil)}}
}

// refineGain is how much better the best face of a visit must be than the
// one its event carried to be sent after it.
const refineGain = 1.25

// consider keeps the frame of the best face of a track so far: big,
// sharp and frontal.
func (t *track) consider(f vision.Frame, fc Face, p Probe) {
	q := float64(fc.Box.Dy()) * min(p.Sharpness, 500) * (1 - p.Yaw)
	if q <= t.bestQ {
		return
	}
	t.bestQ, t.bestBox, t.sceneAt = q, fc.Box, f.Wall
	f.Mat.CopyTo(&t.scene)
}

// evidence is the pair GA/T 1400 uploads with a face: the best crop of the
// visit and its scene (the whole frame, the face boxed). A stranger's pair
// is sealed by the gallery (data gets its crop_id): neither is on disk in
// the clear. A known person's pair is stored as media.
func (d *Detector) evidence(t *track, typ string, data map[string]any) []vision.Image {
	if t.scene.Empty() {
		return nil
	}
	crop := boxJPEG(t.scene, t.bestBox)
	scene, err := vision.SnapshotJPEG(t.scene, t.bestBox)
	if err != nil {
		d.log.Error("face scene", "err", err)
	}
	imgs := []vision.Image{{Kind: "crop", ContentType: "image/jpeg", Data: crop}, {Kind: "snapshot", ContentType: "image/jpeg", Data: scene}}
	if typ == event.FaceUnknown && d.gal != nil {
		u, err := d.gal.AddUnknown(d.cam, t.sceneAt, t.bestScore, crop, scene)
		if err != nil {
			d.log.Error("keep unknown face crop", "err", err)
			return nil
		}
		if data != nil {
			data["crop_id"] = u.ID
		}
		imgs[0].URL, imgs[1].URL = gallery.UnknownCropURL(u.ID), gallery.UnknownSceneURL(u.ID)
	}
	return slices.DeleteFunc(imgs, func(im vision.Image) bool { return im.Data == nil })
}

// Detect implements vision.Detector.
func (d *Detector) Detect(f vision.Frame) []vision.Detection {
	start := time.Now()
	defer func() { d.Elapsed += time.Since(start) }()
	if d.gal != nil && d.gal.Version() != d.ver {
		if err := d.reload(); err != nil {
			d.log.Error("face gallery reload", "err", err)
		}
	}
	d.counts["face_frames"]++
	faces, err := d.eng.Detect(f.Mat)
	if err != nil {
		d.counts["face_errors"]++
		d.log.Error("face detect", "err", err)
		return nil
	}
	d.counts["face_faces"] += len(faces)
	tracks := d.assign(faces, f.PTS)
	var out []vision.Detection
	if f.Damaged {
		// A lost slice shifts half a face sideways: its embedding is
		// nobody's, and a resident walking in through a lossy stream
		// became a stranger. Such frames keep the tracks alive but give no
		// votes, no template and no evidence.
		d.counts["face_damaged_frames"]++
		faces = nil
	}
	for i, fc := range faces {
		t := tracks[i]
		if fc.Box.Dy() < d.opt.MinFacePx {
			if t.emitted == "" {
				d.counts["face_too_small"]++
			}
			continue
		}
		p, err := d.eng.Embed(f.Mat, fc)
		if err != nil {
			d.counts["face_errors"]++
			d.log.Warn("face embed", "err", err)
			continue
		}
		// One person, one track: a face that is not who this track has
		// seen is the next person in a queue, not a continuation.
		if !t.sameIdentity(p.Vec, d.opt.Threshold) {
			var refined []vision.Detection
			t, refined = d.cut(t, fc.Box, f.PTS)
			out = append(out, refined...)
		}
		t.learn(p.Vec)
		if p.Sharpness < d.opt.MinSharpness || p.Yaw > d.opt.MaxYaw {
			if t.emitted == "" {
				d.counts["face_poor_quality"]++
			}
		} else {
			t.consider(f, fc, p)
			if t.emitted == "" {
				if det, ok := d.observe(t, p); ok {
					d.counts["face_"+strings.TrimPrefix(det.Type, "face.")]++
					out = append(out, det)
				}
			}
		}
		p.Crop.Close()
	}
	lost := time.Duration(d.opt.TrackLostSeconds * float64(time.Second))
	kept := d.tracks[:0]
	for _, t := range d.tracks {
		if f.PTS-t.last <= lost {
			kept = append(kept, t)
		} else {
			out = append(out, d.end(t)...)
		}
	}
	d.tracks = kept
	return out
}

// observe matches one good-quality face of a track and decides whether
// the track has earned its one event.
func (d *Detector) observe(t *track, p Probe) (vision.Detection, bool) {
	person, score, ok := d.match.Best(p)
	if ok {
		t.unmatched = 0
		t.hits[person.ID]++
		t.persons[person.ID] = person
		t.best[person.ID] = max(t.best[person.ID], score)
		if t.hits[person.ID] < d.opt.ConfirmFrames {
			return vision.Detection{}, false
		}
		typ, sev := event.FaceRecognized, event.Severity("")
		if person.Group == gallery.Watchlist {
			typ, sev = event.FaceWatchlist, event.Critical
		}
		d.log.Debug("face matched", "track", t.id, "person", person.ID, "name", person.Name, "score", t.best[person.ID])
		return d.emit(t, vision.Detection{Type: typ, Severity: sev,
			Data: map[string]any{"person_id": person.ID, "name": person.Name, "score": round3(t.best[person.ID]), "group": string(person.Group)}}), true
	}
	t.bestScore = max(t.bestScore, score)
	t.unmatched++
	if t.unmatched < d.opt.UnknownAfterFrames {
		return vision.Detection{}, false
	}
	d.log.Info("unknown face", "track", t.id)
	return d.emit(t, vision.Detection{Type: event.FaceUnknown,
		Data: map[string]any{"person_id": "", "name": "", "score": round3(t.bestScore)}}), true
}

// emit gives track t its one event, det, with the visit's best face so far
// and its scene; a better face later follows it (see end).
func (d *Detector) emit(t *track, det vision.Detection) vision.Detection {
	t.emitted, t.emittedQ = det.Type, t.bestQ
	det.BBox, det.Key = t.bestBox, d.key(t)
	det.Data["bbox"], det.Data["track"] = vision.BBoxList(t.bestBox), t.id
	det.Images = d.evidence(t, det.Type, det.Data)
	return det
}

func round3(v float64) float64 { return float64(int(v*1000+0.5)) / 1000 }

// boxJPEG encodes the face box widened by a quarter, for people to look at.
func boxJPEG(img gocv.Mat, r image.Rectangle) []byte {
	pad := r.Dx() / 4
	r = image.Rect(r.Min.X-pad, r.Min.Y-pad, r.Max.X+pad, r.Max.Y+pad).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Empty() {
		return nil
	}
	roi := img.Region(r)
	defer roi.Close()
	b, err := gocv.IMEncode(gocv.JPEGFileExt, roi)
	if err != nil {
		return nil
	}
	defer b.Close()
	return append([]byte(nil), b.GetBytes()...)
}
