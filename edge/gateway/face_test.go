package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/camera/cameratest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink/viid/viidtest"
)

func sharedData(t *testing.T) string {
	return testenv.SharedData(t, "models/face_embed_112_fr_feature.onnx", "faces/london")
}

// Faces walking past a live RTSP entrance camera: residents enrolled
// through the API while the gateway runs are recognised, a watch-listed
// person raises a critical alarm, a stranger is reported unknown. Each
// alarm carries the face crop and its scene; the watch-listed man steps
// closer after his alarm, and his best face follows it.
func TestFaceVideoThroughGateway(t *testing.T) {
	d := sharedData(t)
	cameratest.NeedFFmpeg(t)
	dir := t.TempDir()
	video := filepath.Join(dir, "entrance.mp4")
	smiling := func(f string) string { return filepath.Join(d, "faces/london/smiling_front", f) }
	cameratest.Shots(t, video, []cameratest.Shot{
		{Image: smiling("001_08.jpg"), Secs: 3}, {Secs: 3},
		{Image: smiling("002_08.jpg"), Scale: 0.4, Secs: 1.5}, {Image: smiling("002_08.jpg"), Secs: 1.5}, {Secs: 3},
		{Image: smiling("003_08.jpg"), Secs: 3}, {Secs: 3},
	})
	rtspAddr := replayRTSP(t, "entrance", video)

	// The faces also go to a GA/T 1400 view library.
	viewLib := viidtest.New("warden", "s3cret")
	t.Cleanup(viewLib.Close)
	keyFile := filepath.Join(dir, "face.key")
	os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)+"\n"), 0o600)
	models, _ := filepath.Abs("../../models")
	s := newSite(t, "", counterDevice+fmt.Sprintf(`cameras:
  - id: entrance
    url: rtsp://%s/entrance
    location: {zone: north-gate}
    detect:
      fps: 5
      face: {detector_model: %q, recognizer_model: %q, recognizer_input: arcface, key_file: %q, min_face_px: 40}
uplink:
  gat1400: {url: %q, device_id: "33010299011190000253", username: warden, password: s3cret}
  min_backoff: 100ms
  max_backoff: 500ms
`, rtspAddr, filepath.Join(models, "face_detection_yunet_2022mar.onnx"), filepath.Join(d, "models/face_embed_112_fr_feature.onnx"), keyFile, viewLib.URL()))
	s.start()

	enrol := func(person, group, img string) {
		b, err := os.ReadFile(filepath.Join(d, "faces/london/neutral_front", img))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"person": person, "name": "Person " + person, "group": group,
			"images": []string{base64.StdEncoding.EncodeToString(b)}})
		if code, out := s.apiPost("/api/v1/gallery", string(body)); code != 201 {
			t.Fatalf("enrol %s: %d %s", person, code, out)
		}
	}
	enrol("p001", "resident", "001_03.jpg")
	enrol("w002", "watchlist", "002_03.jpg")

	testenv.Eventually(t, 90*time.Second, "recognised, watch-listed and unknown faces", func() (bool, string) {
		evs, err := s.allEvents("face.")
		if err != nil {
			return false, err.Error()
		}
		seen := map[string]bool{}
		for _, e := range evs {
			seen[e.Type+"/"+fmt.Sprint(e.Data["person_id"])] = true
			if e.Type == "face.watchlist" && e.Severity != "critical" {
				t.Errorf("face.watchlist severity %s", e.Severity)
			}
		}
		ok := seen["face.recognized/p001"] && seen["face.watchlist/w002"]
		unknown := false
		for k := range seen {
			unknown = unknown || strings.HasPrefix(k, "face.unknown/")
		}
		return ok && unknown, fmt.Sprint(seen)
	})
	var open struct{ Alarms []struct{ Type string } }
	testenv.Eventually(t, 20*time.Second, "an alarm for the watch-listed face", func() (bool, string) {
		if err := s.apiGet("/api/v1/alarms?state=open", &open); err != nil {
			return false, err.Error()
		}
		for _, a := range open.Alarms {
			if a.Type == "face.watchlist" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", open.Alarms)
	})
	checkFaceEvidence(t, s)
	if strings.Contains(s.log(), "Person p001") {
		t.Errorf("a person's name appears in the info-level log")
	}
	pics := checkUnknownCropSealed(t, s)
	checkViewLibrary(t, s, viewLib, pics)
}

// checkViewLibrary: every face event reached the GA/T 1400 view library,
// with its crop (type 11) and scene (14); a stranger's are the sealed
// pictures, unsealed for the platform.
func checkViewLibrary(t *testing.T, s *site, v *viidtest.Server, unknownPics [][]byte) {
	t.Helper()
	var faces int
	for _, typ := range []string{"face.recognized", "face.watchlist", "face.unknown"} {
		evs, err := s.allEvents(typ)
		if err != nil {
			t.Fatal(err)
		}
		faces += len(evs)
	}
	testenv.Until(t, 30*time.Second, "every face at the view library", func() bool { return v.Distinct() == faces })
	if p := v.Problems(); len(p) > 0 {
		t.Fatalf("the view library saw violations:\n%s", strings.Join(p, "\n"))
	}
	var named, sealed bool
	for _, o := range v.Objects() {
		types := map[string]bool{}
		for _, im := range o.Face.SubImageList.SubImageInfoObject {
			types[im.Type] = true
			for _, p := range unknownPics {
				sealed = sealed || bytes.Equal(p, im.Data)
			}
		}
		if !types["11"] || !types["14"] {
			t.Errorf("face %s pictures %v, want 11 (face) and 14 (scene)", o.ID, types)
		}
		named = named || o.Face.Name == "Person w002"
	}
	if !named || !sealed {
		t.Errorf("view library: watch-listed name seen %v, a stranger's sealed picture seen %v", named, sealed)
	}
}

// checkUnknownCropSealed: a stranger's crop and scene are served to guards
// decrypted from the gallery's sealed copies, and their bytes are nowhere on
// disk in the clear (the crop once sat in data_dir/media beside the sealed
// copy, the scene as a plain snapshot).
func checkUnknownCropSealed(t *testing.T, s *site) [][]byte {
	t.Helper()
	evs, err := s.allEvents("face.unknown")
	if err != nil || len(evs) == 0 {
		t.Fatalf("face.unknown events: %d, %v", len(evs), err)
	}
	var pics [][]byte
	kinds := map[string]bool{}
	for _, e := range evs {
		for _, m := range e.Media {
			if !strings.HasPrefix(m.URL, "/api/v1/faces/unknown/") {
				t.Fatalf("%s media at %s, want the gallery's sealed copy under /api/v1/faces/unknown/", m.Kind, m.URL)
			}
			code, body := s.apiRaw(m.URL)
			sum := sha256.Sum256(body)
			if code != 200 || len(body) < 4 || body[0] != 0xFF || body[1] != 0xD8 || hex.EncodeToString(sum[:]) != m.SHA256 {
				t.Fatalf("GET %s: %d, %d bytes, sha256 match %v", m.URL, code, len(body), hex.EncodeToString(sum[:]) == m.SHA256)
			}
			kinds[m.Kind] = true
			pics = append(pics, body)
		}
	}
	if !kinds["crop"] || !kinds["snapshot"] {
		t.Fatalf("face.unknown media kinds %v, want a crop and its scene (snapshot)", kinds)
	}
	err = filepath.WalkDir(filepath.Join(s.dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, pic := range pics {
			if bytes.Contains(b, pic) {
				t.Errorf("%s holds an unknown face's picture in the clear", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pics
}

// checkFaceEvidence: the first face.watchlist event carries a crop and its
// scene, served as JPEGs with their hashes; the close-up that came after
// it follows as a media.added of that event, with both again.
func checkFaceEvidence(t *testing.T, s *site) {
	t.Helper()
	evs, err := s.allEvents("face.watchlist")
	if err != nil || len(evs) == 0 {
		t.Fatalf("face.watchlist events: %d, %v", len(evs), err)
	}
	w := evs[0]
	kinds := func(e apiEvent) string {
		var k []string
		for _, m := range e.Media {
			code, body := s.apiRaw(m.URL)
			sum := sha256.Sum256(body)
			if code != 200 || len(body) < 4 || body[0] != 0xFF || body[1] != 0xD8 || hex.EncodeToString(sum[:]) != m.SHA256 {
				t.Errorf("%s %s at %s: %d, %d bytes, sha256 match %v", e.Type, m.Kind, m.URL, code, len(body), hex.EncodeToString(sum[:]) == m.SHA256)
			}
			k = append(k, m.Kind)
		}
		return strings.Join(k, ",")
	}
	if k := kinds(w); k != "crop,snapshot" {
		t.Errorf("face.watchlist media %q, want crop,snapshot", k)
	}
	testenv.Eventually(t, 30*time.Second, "the visit's best face following the watch-list alarm", func() (bool, string) {
		added, err := s.allEvents("media.added")
		if err != nil {
			return false, err.Error()
		}
		for _, a := range added {
			if a.Data["event_id"] == w.ID {
				if k := kinds(a); k != "crop,snapshot" {
					t.Errorf("media.added of face.watchlist: %q, want crop,snapshot", k)
				}
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d media.added, none for %s", len(added), w.ID)
	})
}
