package face_test

import (
	"fmt"
	"image"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/vision"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// A resident walks in while the stream loses packets: in the first 1.2 s
// the lower half of each frame is a slice shifted 32 px sideways (what a
// lost slice leaves), and the decoder flagged those frames. She is
// recognised once the picture is whole, and is never a stranger. Without
// the flag the same frames give face.unknown.
func TestDamagedFramesMakeNoStranger(t *testing.T) {
	d, _, sec := enrolledGallery(t)
	cam := config.Camera{ID: "gate", Detect: config.Detect{FPS: 5, Face: config.SectionOf(sec)}}
	photo := gocv.IMRead(filepath.Join(d, "faces/london/smiling_front/001_08.jpg"), gocv.IMReadColor)
	defer photo.Close()
	if photo.Empty() {
		t.Fatal("cannot read the photo of p001")
	}
	whole := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer whole.Close()
	roi := whole.Region(image.Rect(160, 0, 640, 480))
	gocv.Resize(photo, &roi, image.Pt(480, 480), 0, 0, gocv.InterpolationArea)
	roi.Close()
	torn := whole.Clone()
	defer torn.Close()
	src, dst := whole.Region(image.Rect(160, 260, 608, 480)), torn.Region(image.Rect(192, 260, 640, 480))
	src.CopyTo(&dst)
	src.Close()
	dst.Close()

	run := func(flag bool) (string, map[string]int) {
		det, err := face.New(cam)
		if err != nil {
			t.Fatal(err)
		}
		defer det.Close()
		var got []string
		for i := range 20 {
			f := vision.Frame{Mat: whole, PTS: time.Duration(i) * 200 * time.Millisecond, Wall: time.Now(), Seq: i}
			if i < 6 {
				f.Mat, f.Damaged = torn, flag
			}
			for _, x := range det.Detect(f) {
				got = append(got, fmt.Sprintf("%s/%v@%d", x.Type, x.Data["person_id"], i))
			}
		}
		return strings.Join(got, " "), det.(vision.Counting).Counts()
	}
	got, c := run(true)
	if got != "face.recognized/p001@7" || c["face_damaged_frames"] != 6 {
		t.Errorf("torn frames flagged damaged: events %q, counts %v; want p001 recognised on the 2nd whole frame, 6 damaged frames counted", got, c)
	}
	if got, _ := run(false); !strings.HasPrefix(got, "face.unknown/") {
		t.Errorf("the same torn frames unflagged give %q: the test no longer shows the harm (want face.unknown first)", got)
	}
}
