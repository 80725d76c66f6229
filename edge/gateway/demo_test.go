package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoScript runs `scripts/demo.sh` (what `make demo` runs after the
// build) on free ports and a temp dir, checks through the API that the
// newcomer sees what docs/demo.md promises, then presses Ctrl-C (SIGINT to
// the script's process group) and checks that everything it started is gone.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo (about a minute); skipped with -short")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("scripts/demo.sh needs %s: %v", tool, err)
		}
	}
	root := moduleRoot(t)
	shared := filepath.Join(filepath.Dir(root), "shared", "data")
	if d := os.Getenv("DEMO_TEST_SHARED_DATA"); d != "" { // e.g. a missing dir, to test the fallbacks
		shared = d
	}
	_, ffErr := exec.LookPath("ffmpeg")
	cameras := ffErr == nil
	faces := cameras && fileExists(filepath.Join(shared, "video", "face-demographics-walking-and-pause.gif"))
	orange := cameras && fileExists(filepath.Join(shared, "throw", "building_orange_fall.avi"))
	if !cameras {
		t.Log("ffmpeg missing: checking devices only (no camera, throw or face checks)")
	} else if !faces || !orange {
		t.Logf("%s absent: no face checks; the throw camera uses a generated clip", shared)
	}

	bin := wardenBinary(t)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	demoDir := t.TempDir()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DEMO_DIR="+demoDir,
		"API_PORT="+portOf(api),
		fmt.Sprintf("MQTT_PORT=%d", freePort(t)),
		fmt.Sprintf("RTSP_PORT=%d", freePort(t)),
		"SHARED_DATA="+shared,
		"WARDEN="+bin,
		"DEMO_DURATION=150", // a safety net: the test stops it with SIGINT
		"DEMO_OPEN=0", "DISPLAY=", "WAYLAND_DISPLAY=",
	)
	out := &lockedWriter{w: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	logs := func() string {
		out.mu.Lock()
		s := out.w.String()
		out.mu.Unlock()
		if len(s) > 6000 {
			s = "…" + s[len(s)-6000:]
		}
		b, _ := os.ReadFile(filepath.Join(demoDir, "warden.log"))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return "--- demo.sh output:\n" + s + "\n--- warden.log (tail):\n" + string(b)
	}

	// What must show up: the device scenario always; cameras when they can run.
	want := []string{"gas.leak", "valve.closed", "wristband.sos", "gate.denied", "perimeter.intrusion"}
	if cameras {
		want = append(want, "throw.detected", "media.added")
	}
	if faces {
		want = append(want, "face.recognized", "face.unknown", "face.watchlist")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var events []demoEvent
	deadline := time.Now().Add(100 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("demo.sh exited early: %v\n%s", err, logs())
		default:
		}
		var missing []string
		events, missing = demoEvents(client, api, want)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("missing events %v after 100s; have %v\n%s", missing, typesOf(events), logs())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Alarms the console shows.
	var alarms struct {
		Alarms []struct{ Type, State string } `json:"alarms"`
	}
	if err := demoGet(client, api, "/api/v1/alarms?state=open", &alarms); err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, a := range alarms.Alarms {
		open = append(open, a.Type)
	}
	wantAlarms := []string{"gas.leak", "wristband.sos", "gate.denied"}
	if cameras {
		wantAlarms = append(wantAlarms, "throw.detected")
	}
	if faces {
		wantAlarms = append(wantAlarms, "face.watchlist")
	}
	for _, w := range wantAlarms {
		if !slices.Contains(open, w) {
			t.Errorf("no open %s alarm; open: %v", w, open)
		}
	}
	for _, e := range events {
		switch e.Type {
		case "gate.denied":
			if e.Source.ID != "gate-north" {
				t.Errorf("gate.denied from %q", e.Source.ID)
			}
		case "face.recognized":
			if e.Data["person_id"] != "demo-resident-a" {
				t.Errorf("face.recognized person %v, want demo-resident-a (the woman on the left)", e.Data["person_id"])
			}
		case "face.watchlist":
			if e.Data["person_id"] != "demo-watch-w" || e.Severity != "critical" {
				t.Errorf("face.watchlist %v/%s, want demo-watch-w/critical", e.Data["person_id"], e.Severity)
			}
		}
	}

	// The throw's evidence: a trajectory picture and an MP4 clip.
	if cameras {
		throwSeen := false
		for _, e := range events {
			if e.Type != "throw.detected" {
				continue
			}
			throwSeen = true
			if orange && fmt.Sprint(e.Data["origin"].(map[string]any)["floor"]) != "7" {
				t.Errorf("throw origin %v, want floor 7 (the orange is dropped from the top floor)", e.Data["origin"])
			}
			kinds := map[string]string{}
			for _, m := range e.Media {
				kinds[m.Kind] = m.URL
			}
			if kinds["clip"] != "" {
				t.Errorf("the throw event waited for its clip; it must go out at detection")
			}
			// The clip follows as media.added naming the throw.
			for _, a := range events {
				if a.Type == "media.added" && a.Data["event_id"] == e.ID {
					for _, m := range a.Media {
						kinds[m.Kind] = m.URL
					}
				}
			}
			jpeg := demoMedia(t, client, api, kinds["trajectory"])
			if !bytes.HasPrefix(jpeg, []byte{0xFF, 0xD8}) {
				t.Errorf("trajectory media %q is not a JPEG (%d bytes)", kinds["trajectory"], len(jpeg))
			}
			mp4 := demoMedia(t, client, api, kinds["clip"])
			if len(mp4) < 1000 || string(mp4[4:8]) != "ftyp" {
				t.Errorf("clip media %q is not an MP4 (%d bytes)", kinds["clip"], len(mp4))
			}
			break
		}
		if !throwSeen {
			t.Error("no throw.detected")
		}
	}
	if t.Failed() {
		t.Log(logs())
	}

	// Ctrl-C: the terminal sends SIGINT to the whole foreground group.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("demo.sh after SIGINT: %v, want exit status 130", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("demo.sh still running 40s after SIGINT\n%s", logs())
	}
	// Nothing it started is left: no process in its group, the ports free.
	deadline = time.Now().Add(10 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the demo still running after it exited\n%s", logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
		c.Close()
		t.Errorf("API %s still answers after the demo stopped", api)
	}
	out.mu.Lock()
	all := out.w.String()
	out.mu.Unlock()
	if !strings.Contains(all, "Guard console:  http://"+api+"/") || !strings.Contains(all, demoToken) {
		t.Errorf("demo.sh did not print the console URL\n%s", logs())
	}
}

type demoEvent struct {
	ID       string                       `json:"id"`
	Type     string                       `json:"type"`
	Severity string                       `json:"severity"`
	Source   struct{ ID string }          `json:"source"`
	Data     map[string]any               `json:"data"`
	Media    []struct{ Kind, URL string } `json:"media"`
}

const demoToken = "demo-guard-token-0000" // configs/demo.yaml

func demoGet(c *http.Client, api, path string, out any) error {
	req, _ := http.NewRequest("GET", "http://"+api+path, nil)
	req.Header.Set("Authorization", "Bearer "+demoToken)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// demoEvents reads every event and lists the wanted types not among them.
// A throw counts once its clip is attached (the event waits for it).
func demoEvents(c *http.Client, api string, want []string) ([]demoEvent, []string) {
	var page struct {
		Events []demoEvent `json:"events"`
	}
	if err := demoGet(c, api, "/api/v1/events?limit=1000", &page); err != nil {
		return nil, want
	}
	have := map[string]bool{}
	for _, e := range page.Events {
		have[e.Type] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	return page.Events, missing
}

func demoMedia(t *testing.T, c *http.Client, api, url string) []byte {
	t.Helper()
	if url == "" {
		t.Error("media missing")
		return nil
	}
	req, _ := http.NewRequest("GET", "http://"+api+url, nil)
	req.Header.Set("Authorization", "Bearer "+demoToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
	return b
}

func typesOf(es []demoEvent) []string {
	var ts []string
	for _, e := range es {
		ts = append(ts, e.Type)
	}
	return ts
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// moduleRoot walks up to the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	return dir
}
