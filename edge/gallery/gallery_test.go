package gallery_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gallery"
)

var key = bytes.Repeat([]byte{7}, 32)

func open(t *testing.T) (*gallery.Gallery, *bolt.DB, *audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "warden.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	al, err := audit.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gallery.Open(gallery.Options{DB: db, Key: key, Audit: al, Dir: filepath.Join(dir, "faces")})
	if err != nil {
		t.Fatal(err)
	}
	return g, db, al, dir
}

func tpl(v float32) gallery.Template {
	return gallery.Template{Model: "m", Vec: []float32{v, 1 - v}, Crop: []byte("crop-jpeg-bytes"), Source: "a.jpg"}
}

// Names and embeddings never appear in the file in the clear; a wrong key
// fails at Open.
func TestEncryptedAtRest(t *testing.T) {
	g, db, _, dir := open(t)
	if _, err := g.Enroll("admin", gallery.Person{ID: "p1", Name: "Zhang Secretname", Group: gallery.Staff}, []gallery.Template{tpl(0.25)}); err != nil {
		t.Fatal(err)
	}
	es, err := g.Entries()
	if err != nil || len(es) != 1 || es[0].Person.Name != "Zhang Secretname" || es[0].Template.Vec[0] != 0.25 {
		t.Fatalf("entries %+v %v", es, err)
	}
	db.Sync()
	raw, _ := os.ReadFile(filepath.Join(dir, "warden.db"))
	for _, s := range []string{"Secretname", "crop-jpeg-bytes", "0.25"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is in the db file in the clear", s)
		}
	}
	if _, err := gallery.Open(gallery.Options{DB: db, Key: bytes.Repeat([]byte{8}, 32)}); err == nil {
		t.Fatal("wrong key accepted")
	}
	kf := filepath.Join(t.TempDir(), "face-key")
	os.WriteFile(kf, []byte(strings.Repeat("07", 32)+"\n"), 0o600)
	if k, err := gallery.LoadKey(kf); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("hex key: %v", err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", filepath.Dir(kf))
	if k, err := gallery.LoadKey(""); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("credential key: %v", err)
	}
	os.WriteFile(kf, []byte("short"), 0o600)
	if _, err := gallery.LoadKey(kf); err == nil {
		t.Fatal("short key accepted")
	}
}

// Removing a person deletes every template; both changes are audited.
func TestRemoveAndAudit(t *testing.T) {
	g, _, al, _ := open(t)
	g.Enroll("admin", gallery.Person{ID: "p1", Name: "A"}, []gallery.Template{tpl(0.1), tpl(0.2)})
	g.Enroll("admin", gallery.Person{ID: "p10", Name: "B"}, []gallery.Template{tpl(0.3)})
	p, err := g.Enroll("admin", gallery.Person{ID: "p1"}, []gallery.Template{tpl(0.4)})
	if err != nil || p.Templates != 3 || p.Name != "A" {
		t.Fatalf("%+v %v", p, err)
	}
	v := g.Version()
	if err := g.Remove("admin", "p1"); err != nil {
		t.Fatal(err)
	}
	if g.Version() == v {
		t.Error("version did not move")
	}
	es, _ := g.Entries()
	if len(es) != 1 || es[0].Person.ID != "p10" {
		t.Fatalf("left %+v", es)
	}
	if err := g.Remove("admin", "p1"); !errors.Is(err, gallery.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	entries, _ := al.List(0, 100)
	var acts []string
	for _, e := range entries {
		acts = append(acts, e.Action+":"+e.Target)
	}
	if strings.Join(acts, " ") != "gallery.enroll:p1 gallery.enroll:p10 gallery.enroll:p1 gallery.remove:p1" {
		t.Fatalf("audit %v", acts)
	}
	for _, e := range entries {
		if b, _ := json.Marshal(e); bytes.Contains(b, []byte(`"A"`)) {
			t.Errorf("audit carries the name: %s", b)
		}
	}
}

// Unknown crops older than the retention are gone: files and records.
func TestUnknownRetention(t *testing.T) {
	g, _, _, dir := open(t)
	now := time.Now()
	old, err := g.AddUnknown("entrance", now.Add(-8*24*time.Hour), 0.1, []byte("old-face"), []byte("old-scene"))
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := g.AddUnknown("entrance", now.Add(-time.Hour), 0.1, []byte("new-face"), nil)
	if b, err := g.UnknownCrop(old.ID); err != nil || string(b) != "old-face" {
		t.Fatalf("crop %q %v", b, err)
	}
	if b, err := g.UnknownScene(old.ID); err != nil || string(b) != "old-scene" {
		t.Fatalf("scene %q %v", b, err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "faces", "unknown", old.ID+".sealed")); bytes.Contains(raw, []byte("old-face")) {
		t.Fatal("crop file is not encrypted")
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, "faces", "unknown", old.ID+".scene.sealed")); len(raw) == 0 || bytes.Contains(raw, []byte("old-scene")) {
		t.Fatal("scene file is missing or not encrypted")
	}
	n, err := g.PruneUnknown(now.Add(-7 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d %v", n, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "faces", "unknown", "*"))
	if len(files) != 1 || !strings.Contains(files[0], fresh.ID) {
		t.Fatalf("files left %v", files)
	}
	us, _ := g.Unknowns()
	if len(us) != 1 || us[0].ID != fresh.ID {
		t.Fatalf("records left %+v", us)
	}
	if _, err := g.UnknownCrop(old.ID); err == nil {
		t.Fatal("old crop still readable")
	}
	if _, err := g.UnknownScene(old.ID); err == nil {
		t.Fatal("old scene still readable")
	}
}

type fakeEmbedder struct{}

// Template accepts images whose bytes say "face" and names the problem
// otherwise, as the real engine does.
func (fakeEmbedder) Template(img []byte, source string) (gallery.Template, error) {
	if string(img) != "face" {
		return gallery.Template{}, errors.New("no face found")
	}
	return gallery.Template{Model: "m", Vec: []float32{1, 0}, Source: source}, nil
}

type thresholdEmbedder struct{ fakeEmbedder }

func (thresholdEmbedder) Threshold() float64 { return 0.45 }

func TestHTTP(t *testing.T) {
	g, _, _, _ := open(t)
	srv := api.New(api.Options{Tokens: []config.Token{{Name: "boss", Token: "admintok", Role: "admin"}, {Name: "desk", Token: "guardtok", Role: "guard"}}})
	srv.Mount(api.Handlers{Gallery: g.HTTP(fakeEmbedder{})})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	do := func(method, path, tok, ctype string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := do("GET", "/api/v1/gallery", "guardtok", "", nil); code != 403 {
		t.Fatalf("guard list: %d", code)
	}
	js, _ := json.Marshal(map[string]any{"person": "p7", "name": "Li", "group": "watchlist", "images": []string{base64.StdEncoding.EncodeToString([]byte("face"))}})
	if code, body := do("POST", "/api/v1/gallery", "admintok", "application/json", js); code != 201 || !strings.Contains(body, `"watchlist"`) {
		t.Fatalf("enrol json: %d %s", code, body)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("person", "p8")
	fw, _ := mw.CreateFormFile("image", "door.jpg")
	fw.Write([]byte("no"))
	mw.Close()
	if code, body := do("POST", "/api/v1/gallery", "admintok", mw.FormDataContentType(), mp.Bytes()); code != 422 || !strings.Contains(body, "door.jpg: no face") {
		t.Fatalf("enrol multipart without face: %d %s", code, body)
	}
	// The same face for another person: refused naming p7 (the engine's
	// threshold applies when the embedder has one).
	srv2 := api.New(api.Options{Tokens: []config.Token{{Name: "boss", Token: "admintok", Role: "admin"}}})
	srv2.Mount(api.Handlers{Gallery: g.HTTP(thresholdEmbedder{})})
	ts2 := httptest.NewServer(srv2.Handler())
	defer ts2.Close()
	js9, _ := json.Marshal(map[string]any{"person": "p9", "images": []string{base64.StdEncoding.EncodeToString([]byte("face"))}})
	req, _ := http.NewRequest("POST", ts2.URL+"/api/v1/gallery", bytes.NewReader(js9))
	req.Header.Set("Authorization", "Bearer admintok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb bytes.Buffer
	eb.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || !strings.Contains(eb.String(), "p7") || !strings.Contains(eb.String(), "not enrolled") {
		t.Fatalf("p7's face enrolled as p9: %d %s", resp.StatusCode, eb.String())
	}
	if code, body := do("GET", "/api/v1/gallery", "admintok", "", nil); code != 200 || !strings.Contains(body, `"p7"`) || strings.Contains(body, "p8") || strings.Contains(body, "p9") {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, _ := do("DELETE", "/api/v1/gallery/p7", "admintok", "", nil); code != 204 {
		t.Fatalf("remove: %d", code)
	}
	if code, _ := do("DELETE", "/api/v1/gallery/p7", "admintok", "", nil); code != 404 {
		t.Fatalf("remove again: %d", code)
	}
}
