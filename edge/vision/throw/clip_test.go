package throw

import (
	"encoding/csv"
	"github.com/smartcommunity/warden/edge/testenv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/vision"
)

type hit struct {
	pts time.Duration
	det vision.Detection
}

// runClip feeds every frame of path to d with PTS = frame/fps.
func runClip(t testing.TB, d *Detector, path string) []hit {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer vc.Close()
	fps := vc.Get(gocv.VideoCaptureFPS)
	if fps <= 0 {
		fps = 25
	}
	m := gocv.NewMat()
	defer m.Close()
	var out []hit
	for i := 0; vc.Read(&m) && !m.Empty(); i++ {
		pts := time.Duration(float64(i) / fps * float64(time.Second))
		for _, det := range d.Detect(vision.Frame{Mat: m, PTS: pts, Seq: i}) {
			out = append(out, hit{pts, det})
		}
	}
	return out
}

// OrangeFacade is the calibration of building_orange_fall.avi (see docs/throw.md).
var orangeFacade = Facade{TopY: 27, BottomY: 531, LeftX: 150, RightX: 868, Floors: 7, LowestFloor: 1}

func TestOrangeClip(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "data", "throw")
	clip := filepath.Join(dir, "building_orange_fall.avi")
	if _, err := os.Stat(clip); err != nil {
		t.Skipf("semi-synthetic clip absent (%v): skipping", err)
	}
	f, err := os.Open(filepath.Join(dir, "building_orange_fall_gt.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// ground truth: release at the first falling row; 2 floors done when
	// the fall reaches 2 × 72 px
	var relY, relX float64
	var relT, twoT time.Duration = -1, -1
	for _, r := range rows[1:] {
		if r[2] != "1" {
			continue
		}
		ts, _ := strconv.ParseFloat(r[1], 64)
		x, _ := strconv.ParseFloat(r[3], 64)
		y, _ := strconv.ParseFloat(r[4], 64)
		if relT < 0 {
			relT, relX, relY = time.Duration(ts*float64(time.Second)), x, y
		}
		if twoT < 0 && y-relY >= 2*orangeFacade.FloorPx() {
			twoT = time.Duration(ts * float64(time.Second))
		}
	}
	o := Defaults()
	o.Facade = orangeFacade
	d := NewDetector(o, nil)
	defer d.Close()
	hits := runClip(t, d, clip)
	t.Logf("stats %+v", d.Stats)
	if len(hits) != 1 {
		t.Fatalf("got %d throw detections, want 1: %+v", len(hits), hits)
	}
	h := hits[0]
	origin := h.det.Data["origin"].(map[string]any)
	t.Logf("alarm at %v (2 floors at %v, release %v at %.0f,%.0f), origin %v, accel_g %v, rms %v",
		h.pts, twoT, relT, relX, relY, origin, h.det.Data["accel_g"], h.det.Data["fit_rms_px"])
	if got, want := origin["floor"], orangeFacade.FloorAt(relY); got != want {
		t.Errorf("origin floor %v, want %d", got, want)
	}
	if lat := h.pts - twoT; lat > time.Second || lat < -200*time.Millisecond {
		t.Errorf("latency %v after completing 2 floors, want within 1 s", lat)
	}
	if len(h.det.Images) != 1 || h.det.Images[0].Kind != "trajectory" || len(h.det.Images[0].Data) < 1000 {
		t.Errorf("want one trajectory JPEG, got %d images", len(h.det.Images))
	}
	if !h.det.Clip || !h.det.Snapshot {
		t.Error("want Clip and Snapshot")
	}
	if os.Getenv("THROW_WRITE_IMAGE") != "" {
		_ = os.WriteFile(os.Getenv("THROW_WRITE_IMAGE"), h.det.Images[0].Data, 0o644)
	}
}
