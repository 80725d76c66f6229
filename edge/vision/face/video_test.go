package face_test

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/camera"
	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// TestVideoEvents enrols two London people (one on the watchlist) from their
// neutral photos, builds a video of their smiling photos plus a stranger,
// and runs the camera's analyze path (what `warden analyze` runs) over it:
// each person in view gives exactly one event of the right type.
func TestVideoEvents(t *testing.T) {
	d, dir, sec := enrolledGallery(t)
	video := filepath.Join(dir, "entrance.mp4")
	cameratest.Slideshow(t, video, []string{
		filepath.Join(d, "faces/london/smiling_front/001_08.jpg"),
		filepath.Join(d, "faces/london/smiling_front/002_08.jpg"),
		filepath.Join(d, "faces/london/smiling_front/003_08.jpg"),
	}, 3, 3)

	cam := config.Camera{ID: "entrance", Detect: config.Detect{FPS: 5, Face: config.SectionOf(sec)}}
	var evs []*event.Event
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := camera.Analyze(ctx, camera.AnalyzeOptions{Gateway: "gw", Site: "s", Camera: cam}, video, func(e *event.Event) { evs = append(evs, e) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s/%s/%v", e.Type, e.Severity, e.Data["person_id"]))
		t.Logf("%s %s %v", e.Time.Format("05.000"), e.Type, e.Data)
	}
	want := []string{"face.recognized/info/p001", "face.watchlist/critical/w002", "face.unknown/warning/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}

	// what the detector counts (warden_camera_detector_counts_total)
	det, err := face.New(cam)
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	n, err := camera.ReadFile(ctx, video, camera.FileOptions{FPS: 5}, func(f vision.Frame) { det.Detect(f) })
	if err != nil {
		t.Fatal(err)
	}
	c := det.(vision.Counting).Counts()
	t.Logf("%d frames, counts %v", n, c)
	if c["face_frames"] != n || c["face_recognized"] != 1 || c["face_watchlist"] != 1 || c["face_unknown"] != 1 {
		t.Errorf("counts %v after %d frames: want every frame and one of each event", c, n)
	}
	if c["face_faces"] < 3 || c["face_errors"] != 0 {
		t.Errorf("counts %v: want at least one face per person and no errors", c)
	}
}

// enrolledGallery enrols p001 (resident) and w002 (watch list) from their
// neutral London photos into a gallery file, and returns the face options
// that read it.
func enrolledGallery(t *testing.T) (d, dir string, sec map[string]any) {
	d = data(t)
	dir = t.TempDir()
	keyFile := filepath.Join(dir, "face-key")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	dbPath := filepath.Join(dir, "warden.db")

	sec = testOptions(d)
	sec["key_file"] = keyFile
	sec["gallery_db"] = dbPath
	sec["min_face_px"] = 40
	o, err := face.ParseOptions("detect.face", config.SectionOf(sec))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := face.NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	tpl := func(p string) gallery.Template {
		b, err := os.ReadFile(filepath.Join(d, "faces/london", p))
		if err != nil {
			t.Fatal(err)
		}
		tp, err := eng.Template(b, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return tp
	}
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := gallery.LoadKey(keyFile)
	g, err := gallery.Open(gallery.Options{DB: db, Key: key, Dir: filepath.Join(dir, "faces")})
	if err != nil {
		t.Fatal(err)
	}
	g.Enroll("test", gallery.Person{ID: "p001", Name: "Resident One"}, []gallery.Template{tpl("neutral_front/001_03.jpg")})
	g.Enroll("test", gallery.Person{ID: "w002", Name: "Watched", Group: gallery.Watchlist}, []gallery.Template{tpl("neutral_front/002_03.jpg")})
	eng.Close()
	db.Close()

	return d, dir, sec
}

// One person, one track: people one after another at the same spot (a
// queue at a turnstile, 0.1 s apart) give one event each; a person who
// lingers gives one.
func TestQueueGivesOneEventPerPerson(t *testing.T) {
	d, dir, sec := enrolledGallery(t)
	cam := config.Camera{ID: "turnstile", Detect: config.Detect{FPS: 5, Face: config.SectionOf(sec)}}
	run := func(name string, imgs []string, hold, gap float64) []string {
		video := filepath.Join(dir, name+".mp4")
		var paths []string
		for _, im := range imgs {
			paths = append(paths, filepath.Join(d, "faces/london/smiling_front", im))
		}
		cameratest.Slideshow(t, video, paths, hold, gap)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var got []string
		err := camera.Analyze(ctx, camera.AnalyzeOptions{Gateway: "gw", Site: "s", Camera: cam}, video, func(e *event.Event) {
			got = append(got, fmt.Sprintf("%s/%v", e.Type, e.Data["person_id"]))
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := run("queue", []string{"001_08.jpg", "002_08.jpg", "003_08.jpg", "001_08.jpg"}, 2, 0.1); strings.Join(got, " ") !=
		"face.recognized/p001 face.watchlist/w002 face.unknown/ face.recognized/p001" {
		t.Errorf("queue of four: %v", got)
	}
	// A comes back right after B, well inside track_lost_seconds: B's
	// face cut A's track, so A's return is a new visit.
	if got := run("back", []string{"001_08.jpg", "002_08.jpg", "001_08.jpg"}, 0.8, 0.1); strings.Join(got, " ") !=
		"face.recognized/p001 face.watchlist/w002 face.recognized/p001" {
		t.Errorf("A, B, A 0.1 s apart: %v", got)
	}
	if got := run("linger", []string{"002_08.jpg"}, 8, 0.1); strings.Join(got, " ") != "face.watchlist/w002" {
		t.Errorf("one person lingering 8 s: %v", got)
	}
}

// The alarm goes out with the best face seen by then, and its scene; when
// the person then steps closer, the visit's best face and scene follow the
// alarm as a refinement of it (media.added), once, when the person leaves.
func TestBestFaceOfTheVisit(t *testing.T) {
	d, dir, sec := enrolledGallery(t)
	img := filepath.Join(d, "faces/london/smiling_front/002_08.jpg")
	video := filepath.Join(dir, "closer.mp4")
	cameratest.Shots(t, video, []cameratest.Shot{{Image: img, Scale: 0.4, Secs: 1.5}, {Image: img, Secs: 1.5}, {Secs: 2}})
	cam := config.Camera{ID: "gate", Detect: config.Detect{FPS: 5, Face: config.SectionOf(sec)}}
	det, err := face.New(cam)
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	var got []vision.Detection
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := camera.ReadFile(ctx, video, camera.FileOptions{FPS: 5}, func(f vision.Frame) { got = append(got, det.Detect(f)...) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != event.FaceWatchlist || got[0].Key == "" || got[1].Refines != got[0].Key || got[1].Type != "" {
		t.Fatalf("detections %+v: want a face.watchlist, then one refinement of it", got)
	}
	size := func(d vision.Detection, kind string) image.Point {
		t.Helper()
		for _, im := range d.Images {
			if im.Kind == kind {
				m, err := gocv.IMDecode(im.Data, gocv.IMReadColor)
				if err != nil || m.Empty() {
					t.Fatalf("%s of %s does not decode: %v", kind, d.Type, err)
				}
				defer m.Close()
				return image.Pt(m.Cols(), m.Rows())
			}
		}
		t.Fatalf("%s%s carries no %s image", d.Type, d.Refines, kind)
		return image.Point{}
	}
	first, best := size(got[0], "crop"), size(got[1], "crop")
	t.Logf("crop at the alarm %v, best of the visit %v", first, best)
	if best.Y < 2*first.Y {
		t.Errorf("best crop %v is not the close-up (alarm's crop %v)", best, first)
	}
	for _, d := range got {
		if s := size(d, "snapshot"); s != image.Pt(640, 480) {
			t.Errorf("scene of %s%s is %v, want the whole 640×480 frame", d.Type, d.Refines, s)
		}
	}
	if c := det.(vision.Counting).Counts(); c["face_refined"] != 1 {
		t.Errorf("counts %v: want face_refined 1", c)
	}
}
