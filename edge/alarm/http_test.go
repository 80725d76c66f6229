package alarm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

type httpEnv struct {
	*env
	ts *httptest.Server
}

const liTok = "guard-li-token-0123456789"

func newHTTPEnv(t *testing.T) *httpEnv { return newHTTPEnvWith(t, nil) }

func newHTTPEnvWith(t *testing.T, mod func(*alarm.Options)) *httpEnv {
	t.Helper()
	e := newEnv(t, "", mod)
	reg := prometheus.NewRegistry()
	var srv *api.Server
	// The gateway's wiring: every change goes to SSE as "event: alarm".
	e.m.AddNotify(func(c alarm.Change) { srv.PublishLive("alarm", c.Alarm.Rev, c.Payload()) })
	srv = api.New(api.Options{
		Events: e.st, Registerer: reg, Gatherer: reg, Logger: testLogger(),
		Tokens: append(apitest.Tokens(), config.Token{Name: "li", Token: liTok, Role: "guard"}),
	})
	srv.Mount(api.Handlers{Alarms: e.m.HTTP()})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &httpEnv{env: e, ts: ts}
}

type reply struct {
	code int
	body []byte
}

func (h *httpEnv) do(t *testing.T, method, path, tok, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, b}
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) code409(t *testing.T) {
	t.Helper()
	var e struct{ Error, Code string }
	r.decode(t, &e)
	if r.code != http.StatusConflict || e.Code != alarm.CodeConflict || e.Error == "" {
		t.Errorf("got %d %s, want 409 conflict", r.code, r.body)
	}
}

func TestHTTPRoutes(t *testing.T) {
	h := newHTTPEnv(t)
	a := h.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	ack := "/api/v1/alarms/" + a.ID + "/ack"
	resolve := "/api/v1/alarms/" + a.ID + "/resolve"

	// Reading: platform and up; no token: 401.
	if r := h.do(t, "GET", "/api/v1/alarms?state=open", "", ""); r.code != 401 {
		t.Errorf("no token: %d", r.code)
	}
	var list struct {
		Alarms []alarm.Alarm
		Next   string
	}
	r := h.do(t, "GET", "/api/v1/alarms?state=open", apitest.Platform, "")
	if r.code != 200 {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	r.decode(t, &list)
	if len(list.Alarms) != 1 || list.Alarms[0].ID != a.ID || list.Alarms[0].State != alarm.Open || list.Next != "" {
		t.Errorf("list = %s", r.body)
	}
	for _, q := range []string{"?state=closed", "?stat=open", "?limit=0", "?limit=x", "?state=open&state=resolved"} {
		if r := h.do(t, "GET", "/api/v1/alarms"+q, apitest.Guard, ""); r.code != 400 {
			t.Errorf("GET %s: %d, want 400", q, r.code)
		}
	}

	// Acting: platform may not.
	if r := h.do(t, "POST", ack, apitest.Platform, ""); r.code != 403 {
		t.Errorf("platform ack: %d, want 403", r.code)
	}
	if r := h.do(t, "POST", "/api/v1/alarms/01JD0Z3K9Q4N2T8V5W6X7Y8Z9A/ack", apitest.Guard, ""); r.code != 404 {
		t.Errorf("unknown ack: %d %s", r.code, r.body)
	}
	if r := h.do(t, "POST", ack, apitest.Guard, `{"nope":1}`); r.code != 400 {
		t.Errorf("unknown field: %d", r.code)
	}
	r = h.do(t, "POST", ack, apitest.Guard, `{"note":"on my way"}`)
	if r.code != 200 {
		t.Fatalf("ack: %d %s", r.code, r.body)
	}
	var got alarm.Alarm
	r.decode(t, &got)
	if got.State != alarm.Acknowledged || got.Acknowledged == nil || got.Acknowledged.By != "guard-desk" || got.Acknowledged.Note != "on my way" {
		t.Errorf("ack reply = %s", r.body)
	}
	h.do(t, "POST", ack, apitest.Guard, "").code409(t)

	for _, body := range []string{"", `{}`, `{"note":"  "}`} {
		if r := h.do(t, "POST", resolve, apitest.Guard, body); r.code != 400 {
			t.Errorf("resolve with body %q: %d, want 400", body, r.code)
		}
	}
	r = h.do(t, "POST", resolve, apitest.Admin, `{"note":"valve closed, flat ventilated"}`)
	if r.code != 200 {
		t.Fatalf("resolve: %d %s", r.code, r.body)
	}
	h.do(t, "POST", resolve, apitest.Guard, `{"note":"again"}`).code409(t)
	h.do(t, "POST", ack, apitest.Guard, "").code409(t)

	r = h.do(t, "GET", "/api/v1/alarms/"+a.ID, apitest.Platform, "")
	if r.code != 200 {
		t.Fatalf("get: %d", r.code)
	}
	r.decode(t, &got)
	if got.State != alarm.Resolved || got.Resolved.By != "root" || len(got.Timeline) != 3 || got.Timeline[2].Note != "valve closed, flat ventilated" {
		t.Errorf("get = %s", r.body)
	}
	var raw map[string]any
	r.decode(t, &raw)
	for _, k := range []string{"id", "key", "type", "severity", "state", "title", "location", "source", "first_event_id",
		"last_event_id", "last_seq", "count", "opened_at", "acknowledged", "resolved", "escalated", "escalation_level", "media", "timeline"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("alarm JSON lacks %q", k)
		}
	}
	if r := h.do(t, "GET", "/api/v1/alarms/nope", apitest.Guard, ""); r.code != 404 {
		t.Errorf("get unknown: %d", r.code)
	}
	r = h.do(t, "GET", "/api/v1/alarms?state=resolved", apitest.Guard, "")
	r.decode(t, &list)
	if len(list.Alarms) != 1 || list.Alarms[0].Timeline != nil {
		t.Errorf("resolved list = %s", r.body)
	}
	if r := h.do(t, "GET", "/api/v1/alarms?state=open", apitest.Guard, ""); !strings.Contains(string(r.body), `"alarms":[]`) {
		t.Errorf("empty list = %s", r.body)
	}
}

func TestSSEAlarmMessages(t *testing.T) {
	h := newHTTPEnv(t)
	a := h.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.ts.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+apitest.Platform)
	res, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") {
		t.Fatalf("stream did not start: %q %v", sc.Text(), sc.Err())
	}
	if _, err := h.m.Ack(ctx, a.ID, "guard-desk", "seen"); err != nil {
		t.Fatal(err)
	}
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "event: "); ok {
			kind = k
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || kind != "alarm" {
			continue
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(d), &p); err != nil {
			t.Fatalf("alarm data %q: %v", d, err)
		}
		if p["id"] != a.ID {
			t.Fatalf("alarm message = %s", d)
		}
		if p["action"] == "acknowledged" {
			if p["state"] != "acknowledged" || p["rev"] == nil {
				t.Fatalf("alarm message = %s", d)
			}
			return
		}
	}
	t.Fatalf("stream ended without an alarm message: %v", sc.Err())
}
