package alarm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/i18n"
	"github.com/smartcommunity/warden/edge/testenv"
)

// The closed loop through the API: assign, accept (only by the assignee),
// on scene, resolve with an outcome; every step on the timeline, as an
// alarm.* event and in the day's stats and metrics.
func TestAssignAcceptOnSceneResolve(t *testing.T) {
	h := newHTTPEnvWith(t, func(o *alarm.Options) { o.EscalateAfter = time.Hour })
	a := h.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	path := "/api/v1/alarms/" + a.ID

	if r := h.do(t, "POST", path+"/assign", apitest.Guard, `{"note":"nobody"}`); r.code != 400 || !strings.Contains(string(r.body), "to") {
		t.Errorf("assign without to: %d %s", r.code, r.body)
	}
	if r := h.do(t, "POST", path+"/ack", apitest.Guard, `{"outcome":"real"}`); r.code != 400 {
		t.Errorf("ack with an outcome: %d %s, want 400", r.code, r.body)
	}
	if r := h.do(t, "POST", path+"/assign", apitest.Platform, `{"to":"li"}`); r.code != 403 {
		t.Errorf("platform assigns: %d", r.code)
	}
	if r := h.do(t, "POST", path+"/assign", apitest.Guard, `{"to":"li","note":"closest to building 3"}`); r.code != 200 {
		t.Fatalf("assign: %d %s", r.code, r.body)
	}
	if r := h.do(t, "POST", path+"/accept", apitest.Guard, ``); r.code != 403 {
		t.Errorf("accept by someone else: %d %s, want 403", r.code, r.body)
	}
	r := h.do(t, "POST", path+"/accept", liTok, ``)
	var got alarm.Alarm
	if err := json.Unmarshal(r.body, &got); err != nil || r.code != 200 {
		t.Fatalf("accept: %d %s", r.code, r.body)
	}
	if got.State != alarm.Acknowledged || got.Assigned == nil || got.Assigned.To != "li" || got.Assigned.AcceptedAt == nil || got.Acknowledged.By != "li" {
		t.Errorf("after accept: %+v %+v", got.State, got.Assigned)
	}
	if r := h.do(t, "POST", path+"/accept", liTok, ``); r.code != 409 {
		t.Errorf("accept twice: %d", r.code)
	}
	if r := h.do(t, "POST", path+"/onscene", liTok, `{"note":"at the door"}`); r.code != 200 {
		t.Fatalf("on scene: %d %s", r.code, r.body)
	}
	if r := h.do(t, "POST", path+"/resolve", liTok, `{"note":"cooker left on","outcome":"maybe"}`); r.code != 400 {
		t.Errorf("bad outcome: %d", r.code)
	}
	if r := h.do(t, "POST", path+"/resolve", liTok, `{"note":"cooker left on, detector too sensitive","outcome":"false_alarm"}`); r.code != 200 {
		t.Fatalf("resolve: %d %s", r.code, r.body)
	}
	full, err := h.m.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"opened", "assigned", "accepted", "on_scene", "resolved"}
	if acts := actions(full.Timeline); !slices.Equal(acts, want) {
		t.Errorf("timeline %v, want %v", acts, want)
	}
	if full.Outcome != alarm.OutcomeFalse || full.OnScene == nil || full.OnScene.By != "li" {
		t.Errorf("resolved alarm: outcome %q on scene %+v", full.Outcome, full.OnScene)
	}
	for _, typ := range []string{event.AlarmAssigned, event.AlarmAccepted, event.AlarmOnScene, event.AlarmResolved} {
		evs := h.storedOf(t, typ)
		if len(evs) != 1 {
			t.Errorf("%d %s events", len(evs), typ)
			continue
		}
		if evs[0].Data["assigned_to"] != "li" {
			t.Errorf("%s data %v", typ, evs[0].Data)
		}
	}
	if ev := h.storedOf(t, event.AlarmResolved); len(ev) == 1 && ev[0].Data["outcome"] != "false_alarm" {
		t.Errorf("alarm.resolved outcome %v", ev[0].Data["outcome"])
	}
	if v := metric(t, h.reg, "warden_alarm_outcomes_total", map[string]string{"type": "gas.leak", "source": "gas-3-2-201", "outcome": "false_alarm"}); v != 1 {
		t.Errorf("outcomes metric = %v", v)
	}

	// A second leak from another detector, resolved as real without accept.
	b := h.observe(t, mk(event.GasLeak, "gas-5-1-102", ""))
	h.do(t, "POST", "/api/v1/alarms/"+b.ID+"/resolve", apitest.Guard, `{"note":"valve closed","outcome":"real"}`)
	r = h.do(t, "GET", "/api/v1/alarms/stats", apitest.Platform, "")
	var st alarm.Stats
	if err := json.Unmarshal(r.body, &st); err != nil || r.code != 200 {
		t.Fatalf("stats: %d %s", r.code, r.body)
	}
	g := st.Types["gas.leak"]
	if g == nil || g.Opened != 2 || g.Resolved != 2 || g.Acknowledged != 1 || g.Outcomes["false_alarm"] != 1 || g.Outcomes["real"] != 1 ||
		g.FalseAlarmRate == nil || *g.FalseAlarmRate != 0.5 || g.TimeToAck.N != 1 || g.TimeToResolve.N != 2 {
		t.Errorf("gas.leak stats: %+v", g)
	}
	if len(st.Sources) != 1 || st.Sources[0].Source != "gas-3-2-201" || st.Sources[0].FalseAlarms != 1 {
		t.Errorf("sources %+v", st.Sources)
	}
	if st.Day != time.Now().Format(time.DateOnly) || st.All.Opened < 2 {
		t.Errorf("day %s all %+v", st.Day, st.All)
	}
	if r := h.do(t, "GET", "/api/v1/alarms/stats?day=2020-01-01", apitest.Platform, ""); !strings.Contains(string(r.body), `"opened":0`) {
		t.Errorf("another day: %s", r.body)
	}
	if r := h.do(t, "GET", "/api/v1/alarms/stats?day=yesterday", apitest.Platform, ""); r.code != 400 {
		t.Errorf("bad day: %d", r.code)
	}
}

// An assignment nobody accepts passes along the duty roster.
func TestUnacceptedAssignmentPassesOn(t *testing.T) {
	e := newEnv(t, "", func(o *alarm.Options) {
		o.EscalateAfter = time.Hour
		o.AcceptWithin = 100 * time.Millisecond
		o.Duty = []string{"wang", "li", "zhao"}
	})
	a := e.observe(t, mk(event.WristbandSOS, "band-1", ""))
	if _, err := e.m.Assign(bg, a.ID, "desk", "li", ""); err != nil {
		t.Fatal(err)
	}
	e.run(t)
	testenv.Until(t, 30*time.Second, "passed to zhao, then wang", func() bool {
		g, _ := e.m.Get(a.ID)
		var to []string
		for _, x := range g.Timeline {
			if x.Action == alarm.ActAssigned && x.By == "gateway" {
				to = append(to, x.Params["to"])
			}
		}
		return len(to) >= 2 && to[0] == "zhao" && to[1] == "wang"
	})
	g, _ := e.m.Get(a.ID)
	if _, err := e.m.Accept(bg, a.ID, g.Assigned.To); err != nil {
		t.Fatalf("the current assignee accepts: %v", err)
	}
	n := len(e.storedOf(t, event.AlarmAssigned))
	time.Sleep(400 * time.Millisecond)
	if m := len(e.storedOf(t, event.AlarmAssigned)); m != n {
		t.Errorf("an accepted assignment moved on (%d → %d alarm.assigned)", n, m)
	}
}

// A clip that is ready after the alarm opened joins it as an update.
func TestMediaAddedJoinsTheAlarm(t *testing.T) {
	e := newEnv(t, "", nil)
	thr := mk(event.ThrowDetected, "facade-3", "")
	thr.Media = []event.Media{{Kind: "trajectory", URL: "/api/v1/media/T1"}}
	a := e.observe(t, thr)
	if len(a.Media) != 1 {
		t.Fatalf("alarm media at open %+v", a.Media)
	}
	add, err := event.Make(event.Origin{Gateway: "gw-test", Site: "site", Source: thr.Source, Location: thr.Location},
		event.MediaAdded, "", map[string]any{"event_id": thr.ID, "event_type": thr.Type})
	if err != nil {
		t.Fatal(err)
	}
	add.Media = []event.Media{{Kind: "clip", URL: "/api/v1/media/C1"}}
	other := *add
	other.ID, other.Source.ID = event.NewID(time.Now()), "facade-9" // no alarm there: ignored
	e.observe(t, add, &other)
	g, err := e.m.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Media) != 2 || g.Media[1].Kind != "clip" || g.Count != 1 {
		t.Errorf("alarm after media.added: media %+v count %d", g.Media, g.Count)
	}
	if acts := actions(g.Timeline); !slices.Equal(acts, []string{"opened", "media"}) {
		t.Errorf("timeline %v", acts)
	}
	var got []string
	for _, c := range e.recorded() {
		got = append(got, c.Action)
	}
	if !slices.Equal(got, []string{"opened", "media"}) {
		t.Errorf("changes %v, want opened then media", got)
	}
}

// A throw alarm says building, floor and time in its title, in Chinese.
func TestThrowTitleHasFloorAndTime(t *testing.T) {
	e := newEnv(t, "", nil)
	thr, err := event.Make(event.Origin{Gateway: "gw-test", Site: "site", Source: event.Source{Kind: "camera", ID: "facade-3"},
		Location: event.Location{Building: "3"}, Time: time.Date(2026, 12, 5, 22, 14, 3, 0, time.Local)},
		event.ThrowDetected, "", map[string]any{"origin": map[string]any{"floor": 7, "x": 512}})
	if err != nil {
		t.Fatal(err)
	}
	a := e.observe(t, thr)
	if a.Title != "高空抛物 · 3 号楼 第 7 层 · 22:14:03" || a.Floor != 7 {
		t.Errorf("throw title %q floor %d", a.Title, a.Floor)
	}
}

// Configured labels name buildings, zones and cameras in titles.
func TestTitleUsesPlaceLabels(t *testing.T) {
	e := newEnv(t, "", func(o *alarm.Options) {
		o.Places = i18n.Places{Buildings: map[string]string{"3": "3 号楼（东区）"}, Zones: map[string]string{"north": "北侧围栏"},
			Sources: map[string]string{"cam-north": "北门人脸"}}
	})
	a := e.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	if a.Title != "燃气泄漏 · 3 号楼（东区） 2 单元 201 室（gas-3-2-201）" {
		t.Errorf("title %q", a.Title)
	}
	for _, c := range []struct{ kind, id, typ, want string }{
		{"perimeter", "fence-1", event.PerimeterIntr, "周界入侵 · 北侧围栏（fence-1）"},
		{"camera", "cam-north", event.FaceUnknown, "陌生人 · 北侧围栏（北门人脸）"}, // by its display_name
	} {
		ev, err := event.Make(event.Origin{Gateway: "gw-test", Site: "site", Source: event.Source{Kind: c.kind, ID: c.id},
			Location: event.Location{Zone: "north"}}, c.typ, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if b := e.observe(t, ev); b.Title != c.want {
			t.Errorf("title %q, want %q", b.Title, c.want)
		}
	}
}

// A gateway alarm carries its reason as a code clients word themselves.
func TestSystemAlarmCarriesReason(t *testing.T) {
	e := newEnv(t, "", nil)
	ev, err := event.Make(event.Origin{Gateway: "gw-test", Site: "site", Source: event.Source{Kind: "gateway", ID: "face"}},
		event.SystemFault, "", map[string]any{"component": "face", "reason": "face recognition disabled: bad key", "reason_code": "face.disabled"})
	if err != nil {
		t.Fatal(err)
	}
	a := e.observe(t, ev)
	if a.Reason == nil || a.Reason.Code != "face.disabled" || a.Reason.Params["component"] != "face" || !strings.Contains(a.Reason.Text, "bad key") {
		t.Errorf("reason %+v", a.Reason)
	}
	if i18n.T(i18n.ZH, "reason."+a.Reason.Code) == "reason."+a.Reason.Code {
		t.Errorf("no Chinese text for reason %s", a.Reason.Code)
	}
}

// A clock off the GA/T 1400 view library's is an alarm whose reason
// guards read in their language, with the size of the skew.
func TestClockSkewAlarm(t *testing.T) {
	e := newEnv(t, "", nil)
	ev, err := event.Make(event.Origin{Gateway: "gw-test", Site: "site", Source: event.Source{Kind: "uplink", ID: "gat1400"}},
		event.SystemClock, "", map[string]any{"reason": "gateway clock is 5.2 s off", "reason_code": "clock.skew", "skew_seconds": 5.2, "target": "gat1400"})
	if err != nil {
		t.Fatal(err)
	}
	a := e.observe(t, ev)
	if a == nil || a.Reason == nil || a.Reason.Params["skew_seconds"] != "5.2" {
		t.Fatalf("system.clock alarm %+v", a)
	}
	if got := i18n.T(i18n.ZH, "reason.clock.skew", "skew_seconds", a.Reason.Params["skew_seconds"]); !strings.Contains(got, "5.2 秒") {
		t.Errorf("zh-CN reason %q", got)
	}
}

// Titles are stored in zh-CN; a client asking for English gets English.
func TestTitleFollowsAcceptLanguage(t *testing.T) {
	h := newHTTPEnv(t)
	a := h.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	get := func(lang string) string {
		req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/alarms/"+a.ID, nil)
		req.Header.Set("Authorization", "Bearer "+apitest.Guard)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		res, err := h.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var got alarm.Alarm
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got.Title
	}
	if got := get(""); got != "燃气泄漏 · 3 号楼 2 单元 201 室（gas-3-2-201）" {
		t.Errorf("default title %q", got)
	}
	if got := get("en-US,en;q=0.9"); got != "Gas leak · Bldg 3 Unit 2 Room 201 (gas-3-2-201)" {
		t.Errorf("English title %q", got)
	}
}
