package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

type eventsBody struct {
	Events []event.Event `json:"events"`
	Next   uint64        `json:"next"`
}

type errBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func TestPagingNeverSkipsOrRepeats(t *testing.T) {
	e := newEnv(t, nil)
	types := []string{event.GasLeak, event.WristbandSOS, event.GasCleared, event.CameraOnline, event.ValveClosed}
	for range 10 {
		appendN(t, e.st, 100, types...)
	}
	all, _, err := e.st.Read(0, 10000, store.Filter{})
	if err != nil || len(all) != 1000 {
		t.Fatalf("store read: %d events, %v", len(all), err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, prefix := range []string{"", "gas.", "wristband"} {
		var want []uint64
		for _, ev := range all {
			if strings.HasPrefix(ev.Type, prefix) {
				want = append(want, ev.Seq)
			}
		}
		var got []uint64
		after := uint64(0)
		for pages := 0; ; pages++ {
			if pages > 2000 {
				t.Fatal("paging does not end")
			}
			path := fmt.Sprintf("/api/v1/events?after=%d&limit=%d", after, 1+rng.IntN(150))
			if prefix != "" {
				path += "&type=" + prefix
			}
			r := e.do(t, "GET", path, platformTok)
			if r.code != 200 {
				t.Fatalf("%s: %d %s", path, r.code, r.body)
			}
			var b eventsBody
			r.json(t, &b)
			if len(b.Events) == 0 {
				if b.Next != after {
					t.Fatalf("empty page moved next from %d to %d", after, b.Next)
				}
				break
			}
			for _, ev := range b.Events {
				if !strings.HasPrefix(ev.Type, prefix) {
					t.Fatalf("type filter %q returned %s", prefix, ev.Type)
				}
				got = append(got, ev.Seq)
			}
			after = b.Next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("prefix %q: got %d seqs, want %d (first diff somewhere)", prefix, len(got), len(want))
		}
	}
}

func TestEventsDefaultsAndFilters(t *testing.T) {
	e := newEnv(t, nil)
	appendN(t, e.st, 150, event.GasLeak, event.GasCleared)
	var b eventsBody
	r := e.do(t, "GET", "/api/v1/events", guardTok)
	r.json(t, &b)
	if r.code != 200 || len(b.Events) != 100 || b.Next != b.Events[99].Seq {
		t.Fatalf("default page: %d, %d events, next %d", r.code, len(b.Events), b.Next)
	}
	if r.hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", r.hdr.Get("Content-Type"))
	}
	b = eventsBody{}
	e.do(t, "GET", "/api/v1/events?limit=5000&severity=critical", guardTok).json(t, &b)
	if len(b.Events) != 75 {
		t.Fatalf("severity=critical: %d events, want 75", len(b.Events))
	}
	// order=desc: newest first, paged with before=next.
	var desc []uint64
	before := ""
	for {
		b = eventsBody{}
		e.do(t, "GET", "/api/v1/events?order=desc&limit=40&type=gas.leak"+before, guardTok).json(t, &b)
		if len(b.Events) == 0 {
			break
		}
		for _, ev := range b.Events {
			if ev.Type != event.GasLeak || (len(desc) > 0 && ev.Seq >= desc[len(desc)-1]) {
				t.Fatalf("order=desc returned %s seq %d after %v", ev.Type, ev.Seq, desc)
			}
			desc = append(desc, ev.Seq)
		}
		before = fmt.Sprintf("&before=%d", b.Next)
	}
	if len(desc) != 75 || desc[0] != e.st.LastSeq()-1 {
		t.Fatalf("order=desc: %d gas.leak events from %v, want 75 from %d", len(desc), desc[:min(3, len(desc))], e.st.LastSeq()-1)
	}
	// Empty result is [] not null.
	r = e.do(t, "GET", "/api/v1/events?building=9", guardTok)
	if !bytes.Contains(r.body, []byte(`"events":[]`)) {
		t.Fatalf("empty result: %s", r.body)
	}
}

func TestBadParams(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct{ path, name string }{
		{"/api/v1/events?after=-1", "after"},
		{"/api/v1/events?after=x", "after"},
		{"/api/v1/events?limit=0", "limit"},
		{"/api/v1/events?limit=ten", "limit"},
		{"/api/v1/events?since=yesterday", "since"},
		{"/api/v1/events?until=2026-13-01T00:00:00Z", "until"},
		{"/api/v1/events?severity=loud", "severity"},
		{"/api/v1/events?typ=gas", "typ"},
		{"/api/v1/events?order=up", "order"},
		{"/api/v1/events?before=5", "before"},
		{"/api/v1/events?order=desc&after=5", "after"},
		{"/api/v1/events?order=desc&before=x", "before"},
		{"/api/v1/events?type=a&type=b", "type"},
		{"/api/v1/events/stream?after=abc", "after"},
		{"/api/v1/deadletters?limit=-3", "limit"},
	} {
		tok := platformTok
		if strings.Contains(c.path, "deadletters") {
			tok = adminTok
		}
		r := e.do(t, "GET", c.path, tok)
		var eb errBody
		r.json(t, &eb)
		if r.code != 400 || eb.Code != "bad_request" || !strings.Contains(eb.Error, `"`+c.name+`"`) {
			t.Errorf("%s: %d %+v, want 400 naming %q", c.path, r.code, eb, c.name)
		}
	}
	r := e.do(t, "GET", "/api/v1/events/stream", platformTok, "Last-Event-ID", "nope")
	if r.code != 400 || !strings.Contains(string(r.body), "Last-Event-ID") {
		t.Errorf("bad Last-Event-ID: %d %s", r.code, r.body)
	}
}

func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		path, tok string
		want      int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/api/v1/events", "", 401},
		{"/api/v1/events", "wrong-token-0123456789", 401},
		{"/api/v1/events", platformTok, 200},
		{"/api/v1/events", guardTok, 200},
		{"/api/v1/events", adminTok, 200},          // admin token is stored hashed
		{"/api/v1/events", sha(adminTok)[7:], 401}, // the hash itself is not a credential
		{"/api/v1/devices", platformTok, 200},
		{"/api/v1/cameras", platformTok, 200},
		{"/api/v1/deadletters", platformTok, 403},
		{"/api/v1/deadletters", guardTok, 403},
		{"/api/v1/deadletters", adminTok, 200},
		{"/metrics", "", 401},
		{"/metrics", platformTok, 200},
	} {
		r := e.do(t, "GET", c.path, c.tok)
		if r.code != c.want {
			t.Errorf("GET %s with %q: %d, want %d (%s)", c.path, c.tok, r.code, c.want, r.body)
			continue
		}
		if c.want == 401 && r.hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate", c.path)
		}
		if c.want >= 400 {
			var eb errBody
			r.json(t, &eb)
			if eb.Code == "" || eb.Error == "" {
				t.Errorf("GET %s: error body %s", c.path, r.body)
			}
		}
	}
	// Basic auth is not a bearer token.
	r := e.do(t, "GET", "/api/v1/events", "", "Authorization", "Basic Z3VhcmQ6eA==")
	if r.code != 401 {
		t.Errorf("basic auth: %d", r.code)
	}
	if n := testenv.MetricValue(t, e.reg, "warden_api_auth_failures_total", map[string]string{"reason": "forbidden"}); n != 2 {
		t.Errorf("forbidden failures = %v, want 2", n)
	}
	if n := testenv.MetricValue(t, e.reg, "warden_api_auth_failures_total", nil); n != 7 {
		t.Errorf("auth failures = %v, want 7", n)
	}

	// Mounted action routes: guard may act, platform may not.
	e.srv.Handle("POST /api/v1/test/act", api.RoleGuard, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := api.PrincipalFrom(r.Context())
		api.WriteJSON(w, 200, map[string]string{"by": p.Name})
	}))
	if r := e.do(t, "POST", "/api/v1/test/act", platformTok); r.code != 403 {
		t.Errorf("platform act: %d", r.code)
	}
	if r := e.do(t, "POST", "/api/v1/test/act", adminTok); r.code != 200 || !strings.Contains(string(r.body), `"root"`) {
		t.Errorf("admin act: %d %s", r.code, r.body)
	}
}

func TestSessionAuthHook(t *testing.T) {
	e := newEnv(t, func(o *api.Options) {
		o.SessionAuth = func(r *http.Request) (api.Principal, bool) {
			c, err := r.Cookie("session")
			if err != nil || c.Value != "good" {
				return api.Principal{}, false
			}
			return api.Principal{Name: "alice", Role: api.RoleGuard}, true
		}
	})
	if r := e.do(t, "GET", "/api/v1/events", "", "Cookie", "session=good"); r.code != 200 {
		t.Errorf("session: %d", r.code)
	}
	if r := e.do(t, "GET", "/api/v1/events", "", "Cookie", "session=bad"); r.code != 401 {
		t.Errorf("bad session: %d", r.code)
	}
	if r := e.do(t, "GET", "/api/v1/deadletters", "", "Cookie", "session=good"); r.code != 403 {
		t.Errorf("guard session on admin route: %d", r.code)
	}
}

func TestMetricsPublicAndRoutes(t *testing.T) {
	e := newEnv(t, func(o *api.Options) { o.MetricsPublic = true })
	e.do(t, "GET", "/api/v1/events", platformTok)
	e.do(t, "GET", "/api/v1/events?after=1", platformTok)
	e.do(t, "GET", "/nope", platformTok)
	r := e.do(t, "GET", "/metrics", "")
	if r.code != 200 {
		t.Fatalf("public metrics: %d", r.code)
	}
	body := string(r.body)
	for _, want := range []string{
		`warden_api_requests_total{code="200",route="GET /api/v1/events"} 2`,
		`warden_api_requests_total{code="404",route="unmatched"} 1`,
		`warden_api_request_seconds_count{route="GET /api/v1/events"} 2`,
		`warden_api_sse_clients 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(t, "GET", "/api/v1/nothing", platformTok)
	var eb errBody
	r.json(t, &eb)
	if r.code != 404 || eb.Code != "not_found" {
		t.Errorf("404: %d %s", r.code, r.body)
	}
	r = e.do(t, "DELETE", "/api/v1/events", platformTok)
	eb = errBody{}
	r.json(t, &eb)
	if r.code != 405 || eb.Code != "method_not_allowed" || !strings.Contains(r.hdr.Get("Allow"), "GET") {
		t.Errorf("405: %d %v %s", r.code, r.hdr, r.body)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(o *api.Options) { o.MaxBodyBytes = 64 })
	e.srv.Handle("POST /api/v1/test/echo", api.RoleGuard, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := api.DecodeJSON(r, &v); err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, 200, v)
	}))
	post := func(body string, chunked bool) resp {
		var rd = strings.NewReader(body)
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/test/echo", rd)
		if chunked {
			req.ContentLength = -1 // unknown length: the limit must hold while reading
			req.Body = io.NopCloser(struct{ io.Reader }{rd})
		}
		req.Header.Set("Authorization", "Bearer "+guardTok)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return resp{code: res.StatusCode, body: b.Bytes()}
	}
	big := `{"note":"` + strings.Repeat("x", 200) + `"}`
	for _, chunked := range []bool{false, true} {
		r := post(big, chunked)
		if r.code != 413 || !strings.Contains(string(r.body), `"too_large"`) {
			t.Errorf("chunked=%v: %d %s", chunked, r.code, r.body)
		}
	}
	if r := post(`{"note":"ok"}`, false); r.code != 200 {
		t.Errorf("small body: %d %s", r.code, r.body)
	}
	if r := post(`{"note":`, false); r.code != 400 {
		t.Errorf("broken body: %d %s", r.code, r.body)
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Handle("GET /api/v1/test/panic", api.RolePlatform, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	r := e.do(t, "GET", "/api/v1/test/panic", platformTok)
	if r.code != 500 || !strings.Contains(string(r.body), `"internal"`) {
		t.Fatalf("panic: %d %s", r.code, r.body)
	}
	if n := testenv.MetricValue(t, e.reg, "warden_api_panics_total", nil); n != 1 {
		t.Fatalf("panics metric %v", n)
	}
	if r := e.do(t, "GET", "/healthz", ""); r.code != 200 {
		t.Fatalf("server unhealthy after panic: %d", r.code)
	}
}

func TestReadyz(t *testing.T) {
	var storeErr error
	e := newEnv(t, func(o *api.Options) {
		o.Ready = []api.Check{
			{Name: "store", Fn: func() error { return storeErr }},
			{Name: "mqtt", Fn: func() error { return nil }},
		}
	})
	if r := e.do(t, "GET", "/readyz", ""); r.code != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Fatalf("ready: %d %s", r.code, r.body)
	}
	storeErr = errors.New("disk /var/lib/warden full")
	var b struct {
		Status string            `json:"status"`
		Failed map[string]string `json:"failed"`
	}
	r := e.do(t, "GET", "/readyz", adminTok)
	r.json(t, &b)
	if r.code != 503 || b.Status != "not ready" || b.Failed["store"] != storeErr.Error() || len(b.Failed) != 1 {
		t.Fatalf("not ready (auth): %d %s", r.code, r.body)
	}
	r = e.do(t, "GET", "/readyz", "")
	if r.code != 503 || strings.Contains(string(r.body), "/var/lib") || !strings.Contains(string(r.body), `"store":"failed"`) {
		t.Fatalf("not ready (anonymous) leaks or lacks detail: %d %s", r.code, r.body)
	}
}

// A hung check (a store stuck on a dead disk) must not hang the probe, and
// probes while it stays hung must not pile up goroutines behind it.
func TestReadyzTimesOutAHungCheck(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	e := newEnv(t, func(o *api.Options) {
		o.ReadyTimeout = time.Second
		o.Ready = []api.Check{
			{Name: "store", Fn: func() error { runs.Add(1); <-release; return nil }},
			{Name: "mqtt", Fn: func() error { return nil }},
		}
	})
	var b struct {
		Failed map[string]string `json:"failed"`
	}
	r := e.do(t, "GET", "/readyz", adminTok)
	r.json(t, &b)
	if r.code != 503 || !strings.Contains(b.Failed["store"], "timed out") || len(b.Failed) != 1 {
		t.Fatalf("hung check: %d %s", r.code, r.body)
	}
	r = e.do(t, "GET", "/readyz", adminTok)
	b.Failed = nil
	r.json(t, &b)
	if r.code != 503 || !strings.Contains(b.Failed["store"], "still running") {
		t.Fatalf("second probe while hung: %d %s", r.code, r.body)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the hung check was started %d times, want once", n)
	}
	close(release)
	// the first run ends; then a probe runs the check again and passes
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = e.do(t, "GET", "/readyz", "")
		if r.code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.code != 200 || runs.Load() < 2 {
		t.Fatalf("after release: %d %s (runs %d)", r.code, r.body, runs.Load())
	}
}

func TestMedia(t *testing.T) {
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte("jpegdata"), 500)...)
	sum := sha256.Sum256(jpeg)
	hexsum := hex.EncodeToString(sum[:])
	var id string
	e := newEnv(t, func(o *api.Options) {
		st := o.Events.(*store.Store)
		o.Media = st
		mi, err := st.PutMedia("snapshot", "image/jpeg", jpeg)
		if err != nil {
			t.Fatalf("put media: %v", err)
		}
		id = mi.ID
	})
	path := "/api/v1/media/" + id
	r := e.do(t, "GET", path, platformTok)
	if r.code != 200 || !bytes.Equal(r.body, jpeg) || r.hdr.Get("Content-Type") != "image/jpeg" || r.hdr.Get("ETag") != `"`+hexsum+`"` {
		t.Fatalf("media: %d %v len %d", r.code, r.hdr, len(r.body))
	}
	r = e.do(t, "GET", path, platformTok, "Range", "bytes=4-11")
	if r.code != 206 || string(r.body) != "jpegdata" || r.hdr.Get("Content-Range") != fmt.Sprintf("bytes 4-11/%d", len(jpeg)) {
		t.Fatalf("range: %d %q %v", r.code, r.body, r.hdr)
	}
	r = e.do(t, "GET", path, platformTok, "If-None-Match", `"`+hexsum+`"`)
	if r.code != 304 {
		t.Fatalf("If-None-Match: %d", r.code)
	}
	if r := e.do(t, "GET", "/api/v1/media/nope", platformTok); r.code != 404 {
		t.Fatalf("missing media: %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", "/api/v1/media/..%2fetc", platformTok); r.code != 400 && r.code != 404 {
		t.Fatalf("traversal id: %d %s", r.code, r.body)
	}
	if r := e.do(t, "GET", path, ""); r.code != 401 {
		t.Fatalf("media without token: %d", r.code)
	}
}

func TestDevicesCamerasSnapshot(t *testing.T) {
	img := []byte{0xff, 0xd8, 0xff, 0xd9}
	e := newEnv(t, func(o *api.Options) {
		o.Snapshot = func(_ context.Context, id string) ([]byte, time.Time, error) {
			switch id {
			case "entrance":
				return img, time.Unix(1700000000, 0), nil
			case "facade-3":
				return nil, time.Time{}, errors.New("camera offline")
			}
			return nil, time.Time{}, fmt.Errorf("camera %s: %w", id, api.ErrNotFound)
		}
	})
	r := e.do(t, "GET", "/api/v1/devices", platformTok)
	if r.code != 200 || !strings.Contains(string(r.body), `"devices":[{"id":"gas-3-2-201"`) || !strings.Contains(string(r.body), `"last_seen":"2023-11-14T22:13:20Z"`) {
		t.Errorf("devices: %d %s", r.code, r.body)
	}
	r = e.do(t, "GET", "/api/v1/cameras", platformTok)
	if r.code != 200 || !strings.Contains(string(r.body), `"cameras":[{"id":"entrance"`) || strings.Contains(string(r.body), "last_seen") {
		t.Errorf("cameras: %d %s", r.code, r.body)
	}
	r = e.do(t, "GET", "/api/v1/cameras/entrance/snapshot", platformTok)
	if r.code != 200 || !bytes.Equal(r.body, img) || r.hdr.Get("Content-Type") != "image/jpeg" {
		t.Errorf("snapshot: %d %v", r.code, r.hdr)
	}
	if r := e.do(t, "GET", "/api/v1/cameras/facade-3/snapshot", platformTok); r.code != 503 {
		t.Errorf("offline snapshot: %d", r.code)
	}
	if r := e.do(t, "GET", "/api/v1/cameras/nope/snapshot", platformTok); r.code != 404 {
		t.Errorf("unknown camera: %d", r.code)
	}
}

// "Last 30 s" of a camera: guards and admins only, seconds checked, the
// MP4 served as the camera returns it.
func TestCameraRecent(t *testing.T) {
	mp4 := []byte("\x00\x00\x00\x18ftypisom recent video")
	var asked time.Duration
	e := newEnv(t, func(o *api.Options) {
		o.Recent = func(_ context.Context, id string, d time.Duration) ([]byte, error) {
			asked = d
			if id != "entrance" {
				return nil, fmt.Errorf("camera %s: %w", id, api.ErrNotFound)
			}
			return mp4, nil
		}
	})
	r := e.do(t, "GET", "/api/v1/cameras/entrance/recent.mp4", guardTok)
	if r.code != 200 || !bytes.Equal(r.body, mp4) || r.hdr.Get("Content-Type") != "video/mp4" || asked != 30*time.Second {
		t.Errorf("recent: %d %v, asked for %v", r.code, r.hdr, asked)
	}
	if r := e.do(t, "GET", "/api/v1/cameras/entrance/recent.mp4?seconds=10", adminTok); r.code != 200 || asked != 10*time.Second {
		t.Errorf("recent 10 s: %d, asked for %v", r.code, asked)
	}
	for _, q := range []string{"0", "31", "ten", "-5"} {
		if r := e.do(t, "GET", "/api/v1/cameras/entrance/recent.mp4?seconds="+q, guardTok); r.code != 400 {
			t.Errorf("seconds=%s: %d %s", q, r.code, r.body)
		}
	}
	if r := e.do(t, "GET", "/api/v1/cameras/nope/recent.mp4", guardTok); r.code != 404 {
		t.Errorf("unknown camera: %d", r.code)
	}
	if r := e.do(t, "GET", "/api/v1/cameras/entrance/recent.mp4", platformTok); r.code != 403 {
		t.Errorf("platform token: %d, want 403 (guards watch video)", r.code)
	}
}

func TestDeadLetters(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(t, "GET", "/api/v1/deadletters?after=0&limit=10", adminTok)
	if r.code != 200 || !strings.Contains(string(r.body), `"deadletters":[]`) {
		t.Fatalf("deadletters: %d %s", r.code, r.body)
	}
}

func TestStreamLive(t *testing.T) {
	e := newEnv(t, func(o *api.Options) { o.Heartbeat = 100 * time.Millisecond })
	appendN(t, e.st, 5) // before connecting: not replayed without resume
	c := openStream(t, e.ts.URL+"/api/v1/events/stream", platformTok)
	testenv.Until(t, 30*time.Second, "sse client gauge", func() bool {
		return testenv.MetricValue(t, e.reg, "warden_api_sse_clients", nil) == 1
	})
	appendN(t, e.st, 3, event.WristbandSOS)
	for want := uint64(6); want <= 8; want++ {
		m := c.next(t)
		var ev event.Event
		if err := jsonUnmarshal(m.data, &ev); err != nil {
			t.Fatal(err)
		}
		if m.event != "event" || m.id != strconv.FormatUint(want, 10) || ev.Seq != want || ev.Type != event.WristbandSOS {
			t.Fatalf("got %+v, want seq %d", m, want)
		}
	}
	// The stream is an event-log follower: its lag shows under its user.
	testenv.Eventually(t, 10*time.Second, "stream listed among followers, caught up", func() (bool, string) {
		lag, ok := e.st.FollowerLag()["sse platform"]
		return ok && lag == 0, fmt.Sprint(e.st.FollowerLag())
	})
	e.srv.PublishLive("alarm", 7, []byte(`{"id":"al-1","state":"open"}`))
	m := c.next(t)
	if m.event != "alarm" || m.data != `{"id":"al-1","state":"open"}` || m.id != "" {
		t.Fatalf("alarm message: %+v", m)
	}
	// Heartbeats keep flowing while idle.
	deadline := time.After(30 * time.Second)
	for hb := false; !hb; {
		select {
		case m := <-c.msgs:
			hb = m.comment == "heartbeat"
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
	c.close()
	testenv.Until(t, 30*time.Second, "sse client gauge back to 0", func() bool {
		return testenv.MetricValue(t, e.reg, "warden_api_sse_clients", nil) == 0
	})
	if _, ok := e.st.FollowerLag()["sse platform"]; ok {
		t.Error("a closed stream is still listed among followers")
	}
}

func TestStreamResumeWhileAppending(t *testing.T) {
	e := newEnv(t, nil)
	appendN(t, e.st, 200, event.GasLeak, event.CameraOnline)
	done := make(chan error, 1)
	go func() {
		for i := range 60 {
			evs := []*event.Event{mkEvent(event.GasLeak), mkEvent(event.CameraOnline), mkEvent(event.GasCleared), mkEvent(event.GasLeak), mkEvent(event.WristbandFall)}
			if err := e.st.Append(context.Background(), evs...); err != nil {
				done <- fmt.Errorf("append %d: %w", i, err)
				return
			}
			if i%10 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		done <- nil
	}()
	const total = 200 + 60*5
	// Unfiltered, resumed by header (which wins over ?after).
	c := openStream(t, e.ts.URL+"/api/v1/events/stream?after=3", platformTok, "Last-Event-ID", "50")
	// Filtered by type prefix, resumed by ?after.
	g := openStream(t, e.ts.URL+"/api/v1/events/stream?after=10&type=gas.", platformTok)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	all, _, err := e.st.Read(0, 10000, store.Filter{})
	if err != nil || len(all) != total {
		t.Fatalf("store has %d, %v", len(all), err)
	}
	for seq := uint64(51); seq <= total; seq++ {
		m := c.next(t)
		if m.id != strconv.FormatUint(seq, 10) {
			t.Fatalf("unfiltered stream: got id %q, want %d", m.id, seq)
		}
	}
	for _, ev := range all {
		if ev.Seq <= 10 || !strings.HasPrefix(ev.Type, "gas.") {
			continue
		}
		m := g.next(t)
		if m.id != strconv.FormatUint(ev.Seq, 10) || !strings.Contains(m.data, `"type":"`+ev.Type+`"`) {
			t.Fatalf("filtered stream: got %s %q, want %d %s", m.id, m.data, ev.Seq, ev.Type)
		}
	}
	// Nothing more (no duplicates): a marker event is the next thing both see.
	appendN(t, e.st, 1, event.GasCleared)
	if m := c.next(t); m.id != strconv.Itoa(total+1) {
		t.Fatalf("after the end: got %q", m.id)
	}
	if m := g.next(t); m.id != strconv.Itoa(total+1) {
		t.Fatalf("filtered after the end: got %q", m.id)
	}
}

func TestStreamResumeReplaysLiveRing(t *testing.T) {
	e := newEnv(t, nil)
	appendN(t, e.st, 3)
	e.srv.PublishLive("alarm", 1, []byte(`{"n":1}`)) // stamped after seq 3
	appendN(t, e.st, 2)
	e.srv.PublishLive("alarm", 2, []byte("{\n\"n\":2}")) // stamped after seq 5, spans lines
	c := openStream(t, e.ts.URL+"/api/v1/events/stream", platformTok, "Last-Event-ID", "4")
	var got []string
	for range 2 {
		m := c.next(t)
		got = append(got, m.event+":"+m.id)
		if m.event == "alarm" {
			got[len(got)-1] += m.data
		}
	}
	// Event 5, then the alarm stamped at 5. The alarm stamped at 3 (before
	// the client's position 4) was already seen by it and is not repeated.
	if fmt.Sprint(got) != fmt.Sprint([]string{"event:5", "alarm:{\n\"n\":2}"}) {
		t.Fatalf("resume order: %q", got)
	}
	appendN(t, e.st, 1)
	if m := c.next(t); m.id != "6" {
		t.Fatalf("then: %+v", m)
	}
}

func jsonUnmarshal(s string, v any) error { return jsonDecode([]byte(s), v) }

func TestServeShutdownNoLeak(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	base := runtime.NumGoroutine()
	srv := api.New(api.Options{Events: st, Tokens: testTokens(), ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, ShutdownTimeout: 5 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	req, _ := http.NewRequest("GET", url+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+guardTok)
	res, err := client.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v %v", res, err)
	}
	// The stream outlives the server's read and write timeouts.
	time.Sleep(600 * time.Millisecond)
	appendN(t, st, 1)
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "id: 1\n") {
		n, err := res.Body.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream broke after the server timeouts: %v (%q)", err, seen.String())
		}
	}
	if r, err := client.Get(url + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", r, err)
	} else {
		r.Body.Close()
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	res.Body.Close()
	tr.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > base+1 {
		if time.Now().After(deadline) {
			b := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after\n%s", base, runtime.NumGoroutine(), b[:runtime.Stack(b, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSlowClientBlocksNobody(t *testing.T) {
	e := newEnv(t, nil)
	// A client that never reads: its socket buffers fill and its writes block.
	slow, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if tc, ok := slow.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(slow, "GET /api/v1/events/stream?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", platformTok)
	testenv.Until(t, 30*time.Second, "slow client connected", func() bool {
		return testenv.MetricValue(t, e.reg, "warden_api_sse_clients", nil) == 1
	})
	fast := openStream(t, e.ts.URL+"/api/v1/events/stream?after=0", platformTok)
	const n = 4000 // about 1.5 MB of SSE, far more than the slow socket holds
	for range n / 500 {
		appendN(t, e.st, 500, event.GasLeak)
	}
	for seq := 1; seq <= n; seq++ {
		if m := fast.next(t); m.id != strconv.Itoa(seq) {
			t.Fatalf("fast client: got %q, want %d", m.id, seq)
		}
	}
	if e.st.LastSeq() != n {
		t.Fatalf("store at %d", e.st.LastSeq())
	}
}
