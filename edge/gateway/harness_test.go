package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Integration tests run the real binary as a subprocess, so a kill -9 is a
// real crash: nothing in our process can flush on its behalf.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func wardenBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "warden-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "warden")
		cmd := exec.Command("go", "build", "-race", "-o", binPath, "../../cmd/warden")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const adminToken = "test-admin-token-0123456789"

// site is one gateway under test: its config, data dir and process.
type site struct {
	t       testing.TB
	dir     string
	cfgPath string
	apiAddr string
	mqttURL string // where devices publish
	cmd     *exec.Cmd
	stderr  *lockedWriter
	done    chan error
	env     []string // extra environment for the process
	bin     string   // the binary to run; default the race-enabled test build
}

// newSite writes a config. broker "" means the embedded one on a free port.
func newSite(t testing.TB, broker string, devicesYAML string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir()}
	s.apiAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	mqtt := ""
	if broker == "" {
		listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s.mqttURL = "tcp://" + listen
		mqtt = fmt.Sprintf("mqtt:\n  embedded: {listen: %q, allow_anonymous: true}\n", listen)
	} else {
		s.mqttURL = broker
		mqtt = fmt.Sprintf("mqtt:\n  broker: %q\n  client_id: warden-test-%d\n", broker, time.Now().UnixNano())
	}
	cfg := fmt.Sprintf(`gateway: {id: gw-test, site: test-site, data_dir: %q}
log: {level: info}
%sapi:
  listen: %q
  metrics_public: true
  tokens: [{name: test-admin, token: %q, role: admin}]
devices:
%s`, filepath.Join(s.dir, "data"), mqtt, s.apiAddr, adminToken, devicesYAML)
	s.cfgPath = filepath.Join(s.dir, "warden.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// start runs the gateway and waits until /readyz says ready. A port that
// freePort found free can be taken before the gateway binds it (by a client
// connection of a test running beside this one): then the site moves its
// API and embedded broker to fresh ports and starts again.
func (s *site) start() {
	s.t.Helper()
	for try := 1; ; try++ {
		err := s.startOnce()
		if err == nil {
			return
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			s.t.Fatal(err)
		}
		s.t.Logf("start %d: a port was taken before warden bound it; again on fresh ports", try)
		s.movePorts()
	}
}

// movePorts rewrites the config with fresh ports for the API and, when
// embedded, the broker.
func (s *site) movePorts() {
	s.t.Helper()
	b, err := os.ReadFile(s.cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := string(b)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(s.t))
	cfg = strings.ReplaceAll(cfg, s.apiAddr, api)
	s.apiAddr = api
	if old, ok := strings.CutPrefix(s.mqttURL, "tcp://"); ok && strings.Contains(cfg, "embedded: {listen: \""+old+"\"") {
		listen := fmt.Sprintf("127.0.0.1:%d", freePort(s.t))
		cfg = strings.ReplaceAll(cfg, old, listen)
		s.mqttURL = "tcp://" + listen
	}
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) startOnce() error {
	s.t.Helper()
	s.stderr = &lockedWriter{w: &bytes.Buffer{}}
	bin := s.bin
	if bin == "" {
		bin = wardenBinary(s.t)
	}
	s.cmd = exec.Command(bin, "run", "--config", s.cfgPath)
	s.cmd.Stderr = s.stderr
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(s.cmd, s.done)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.cmd = nil
			return fmt.Errorf("warden exited during start: %v\n%s", err, s.log())
		default:
		}
		resp, err := http.Get("http://" + s.apiAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("warden not ready after 60s\n%s", s.log())
}

func (s *site) kill9() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
		s.cmd = nil
	}
}

// term sends SIGTERM and returns the exit error.
func (s *site) term() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.cmd = nil
		return err
	case <-time.After(30 * time.Second):
		s.kill9()
		return fmt.Errorf("did not stop within 30s of SIGTERM")
	}
}

func (s *site) stop() {
	if s.cmd != nil {
		_ = s.term()
	}
	if s.stderr != nil {
		s.stderr.mu.Lock()
		out := s.stderr.w.String()
		s.stderr.mu.Unlock()
		for _, line := range repeatedLogKeys(out) {
			s.t.Errorf("log line repeats a key (the callee adds its own fields): %s", line)
		}
	}
}

// repeatedLogKeys returns the JSON log lines (up to five) in which a
// top-level key appears twice: what happens when a caller and its callee
// both add "component" or "camera".
func repeatedLogKeys(log string) []string {
	var bad []string
	for _, line := range strings.Split(log, "\n") {
		if len(bad) < 5 && strings.HasPrefix(line, "{") && repeatsKey(line) {
			bad = append(bad, line)
		}
	}
	return bad
}

func repeatsKey(obj string) bool {
	dec := json.NewDecoder(strings.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := t.(string)
		if seen[k] {
			return true
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
	}
	return false
}

func (s *site) log() string {
	if s.stderr == nil {
		return ""
	}
	s.stderr.mu.Lock()
	out := s.stderr.w.String()
	s.stderr.mu.Unlock()
	if len(out) > 8000 {
		out = "…" + out[len(out)-8000:]
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// apiGet decodes a JSON API response.
func (s *site) apiGet(path string, out any) error {
	req, _ := http.NewRequest("GET", "http://"+s.apiAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type apiEvent struct {
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq"`
	Type     string         `json:"type"`
	Severity string         `json:"severity"`
	Time     time.Time      `json:"time"`
	Source   map[string]any `json:"source"`
	Data     map[string]any `json:"data"`
	Media    []struct {
		Kind   string `json:"kind"`
		URL    string `json:"url"`
		SHA256 string `json:"sha256"`
	} `json:"media"`
}

// apiRaw GETs path with the admin token and returns status and body.
func (s *site) apiRaw(path string) (int, []byte) { return s.apiDo("GET", path, "") }

// apiDo sends a request with the admin token (and a JSON body when
// given) and returns status and body.
func (s *site) apiDo(method, path, body string) (int, []byte) {
	req, _ := http.NewRequest(method, "http://"+s.apiAddr+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// allEvents pages through /api/v1/events.
func (s *site) allEvents(typePrefix string) ([]apiEvent, error) {
	var all []apiEvent
	after := uint64(0)
	for {
		var page struct {
			Events []apiEvent `json:"events"`
			Next   uint64     `json:"next"`
		}
		if err := s.apiGet(fmt.Sprintf("/api/v1/events?after=%d&limit=1000&type=%s", after, typePrefix), &page); err != nil {
			return nil, err
		}
		all = append(all, page.Events...)
		if len(page.Events) == 0 {
			return all, nil
		}
		after = page.Next
	}
}

// metric reads one sample from /metrics, summing over label sets that
// contain every filter string.
func (s *site) metric(name string, filters ...string) float64 {
	resp, err := http.Get("http://" + s.apiAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, f := range filters {
			ok = ok && strings.Contains(line, f)
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			sum += v
		}
	}
	return sum
}

func TestRepeatedLogKeys(t *testing.T) {
	log := `{"time":"t","msg":"a","component":"x","n":{"component":"y"}}
{"time":"t","msg":"b","component":"x","camera":"c","component":"x"}
not json`
	if got := repeatedLogKeys(log); len(got) != 1 || !strings.Contains(got[0], `"msg":"b"`) {
		t.Fatalf("repeatedLogKeys: %q, want the second line only", got)
	}
}

// A port taken between freePort and the gateway's bind moves the site to
// fresh ports instead of failing the test.
func TestSiteMovesOffATakenPort(t *testing.T) {
	s := newSite(t, "", counterDevice)
	l, err := net.Listen("tcp", strings.TrimPrefix(s.mqttURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := s.mqttURL
	s.start()
	if s.mqttURL == taken {
		t.Fatalf("still on the taken %s", taken)
	}
	var devs map[string]any
	if err := s.apiGet("/api/v1/devices", &devs); err != nil {
		t.Fatalf("API after moving ports: %v", err)
	}
}

// replayRTSP serves clip as the RTSP stream name with `warden replay rtsp`
// on a free loopback port until the test ends, and returns the address.
func replayRTSP(t *testing.T, name, clip string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	replay := exec.Command(wardenBinary(t), "replay", "rtsp", "--listen", addr, name+"="+clip)
	if err := replay.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replay.Process.Kill(); replay.Wait() })
	return addr
}
