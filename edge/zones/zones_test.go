package zones_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/zones"
)

var cst = time.FixedZone("CST", 8*3600)

const cfgYAML = `
gateway: {id: gw-test, site: xjl}
devices:
  - {id: fence-n, kind: perimeter, driver: zigbee2mqtt, topic: z/fence-n, zone: north, debounce_s: 0}
  - {id: fence-s, kind: perimeter, driver: zigbee2mqtt, topic: z/fence-s, location: {zone: south}, debounce_s: 0}
  - {id: fence-x, kind: perimeter, driver: zigbee2mqtt, topic: z/fence-x, location: {zone: yard}, debounce_s: 0}
alarms:
  zones:
    - name: north
      armed:
        - {days: [mon, tue, wed, thu, fri], from: "22:00", to: "06:00"}
        - {days: [sat, sun], from: "00:00", to: "24:00"}
    - name: south
      always_armed: true
`

func loadCfg(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(cfgYAML), drivers.Default.Validate, zones.Check)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newZones(t *testing.T, c *config.Config, db *bolt.DB, clk *clock) *zones.Zones {
	t.Helper()
	al, err := audit.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := zones.New(zones.Options{Zones: c.Alarms.Zones, DB: db, Audit: al, Location: cst, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestSchedule(t *testing.T) {
	c := loadCfg(t)
	db := openDB(t, t.TempDir()+"/z.db")
	defer db.Close()
	z := newZones(t, c, db, &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, cst)})
	cases := []struct {
		zone  string
		at    time.Time
		armed bool
		known bool
	}{
		{"north", time.Date(2026, 11, 25, 21, 59, 0, 0, cst), false, true}, // Wednesday evening
		{"north", time.Date(2026, 11, 25, 22, 0, 0, 0, cst), true, true},
		{"north", time.Date(2026, 11, 26, 5, 59, 0, 0, cst), true, true}, // overnight wrap
		{"north", time.Date(2026, 11, 26, 6, 0, 0, 0, cst), false, true},
		{"north", time.Date(2026, 11, 28, 13, 0, 0, 0, cst), true, true},      // Saturday, all day
		{"north", time.Date(2026, 11, 30, 5, 0, 0, 0, cst), false, true},      // Monday 05:00 belongs to Sunday, which has no night window
		{"north", time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC), false, true}, // 04:00 UTC is Wednesday 12:00 in the box's zone
		{"south", time.Date(2026, 11, 25, 12, 0, 0, 0, cst), true, true},
		{"yard", time.Date(2026, 11, 25, 12, 0, 0, 0, cst), true, false},
	}
	for _, k := range cases {
		armed, known := z.Armed(k.zone, k.at)
		if armed != k.armed || known != k.known {
			t.Errorf("%s at %s %s: armed %v known %v, want %v %v", k.zone, k.at.In(cst).Weekday(), k.at.In(cst).Format("15:04"), armed, known, k.armed, k.known)
		}
	}
}

// TestReactStage runs the zones as the ingest stage between the real
// perimeter driver and a real store.
func TestReactStage(t *testing.T) {
	c := loadCfg(t)
	st := storetest.Open(t, store.Options{})
	clk := &clock{}
	z := newZones(t, c, st.DB(), clk)
	r, err := ingest.New(ingest.Options{Gateway: "gw-test", Site: "xjl", Devices: c.Devices, Store: st, Actors: []ingest.Actor{z}})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 25, 12, 0, 0, 0, cst)   // Wednesday noon: north disarmed
	night := time.Date(2026, 11, 25, 23, 0, 0, 0, cst) // north armed
	send := func(topic, payload string, at time.Time) {
		r.Handle(ingest.Message{Topic: topic, Payload: []byte(payload), Received: at})
	}
	send("z/fence-n", `{"action":"vibration"}`, day)
	send("z/fence-n", `{"action":"vibration"}`, night)
	send("z/fence-n", `{"tamper":true}`, day)
	send("z/fence-s", `{"contact":false}`, day)
	send("z/fence-x", `{"occupancy":true}`, day)
	var evs []event.Event
	deadline := time.Now().Add(30 * time.Second)
	for len(evs) < 5 && time.Now().Before(deadline) {
		evs, _, _ = st.Read(0, 100, store.Filter{})
		time.Sleep(10 * time.Millisecond)
	}
	if len(evs) != 5 {
		t.Fatalf("committed %d events, want 5", len(evs))
	}
	want := []struct {
		typ   string
		sev   event.Severity
		armed any
	}{
		{event.PerimeterIntr, event.Info, false},
		{event.PerimeterIntr, event.Critical, true},
		{event.PerimeterTamper, event.Warning, nil}, // tamper stays as it is
		{event.PerimeterIntr, event.Critical, true}, // always armed
		{event.PerimeterIntr, event.Critical, nil},  // unconfigured zone: left alone
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != w.typ || e.Severity != w.sev || e.Data["armed"] != w.armed {
			t.Errorf("event %d: %s %s armed=%v, want %s %s armed=%v (data %v)", i, e.Type, e.Severity, e.Data["armed"], w.typ, w.sev, w.armed, e.Data)
		}
	}
}

func TestOverridesPersistAndExpire(t *testing.T) {
	c := loadCfg(t)
	path := t.TempDir() + "/z.db"
	db := openDB(t, path)
	clk := &clock{time.Date(2026, 11, 25, 21, 0, 0, 0, cst)} // Wednesday 21:00, north disarmed
	z := newZones(t, c, db, clk)
	until := clk.t.Add(30 * time.Minute)
	st, err := z.Set("north", true, until, "guard-desk", "patrol saw a hole")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Armed || st.By != "override" || st.Override == nil || !st.NextChange.Equal(until) {
		t.Errorf("state %+v", st)
	}
	// Disarm south with no until: always armed never changes, so the
	// override lasts until cleared.
	if st, err = z.Set("south", false, time.Time{}, "guard-desk", "maintenance"); err != nil || st.Armed || st.Override.Until != nil {
		t.Errorf("south %+v %v", st, err)
	}
	if _, err := z.Set("nowhere", true, time.Time{}, "g", ""); !errors.Is(err, zones.ErrUnknownZone) {
		t.Errorf("unknown zone: %v", err)
	}
	if _, err := z.Set("north", true, clk.t.Add(-time.Minute), "g", ""); !errors.Is(err, zones.ErrPast) {
		t.Errorf("past until: %v", err)
	}
	db.Close()

	db = openDB(t, path)
	defer db.Close()
	z = newZones(t, c, db, clk)
	if armed, _ := z.Armed("north", clk.t.Add(10*time.Minute)); !armed {
		t.Error("the arm override did not survive a restart")
	}
	if armed, _ := z.Armed("north", clk.t.Add(31*time.Minute)); armed {
		t.Error("the override did not expire (21:31 is outside the schedule)")
	}
	if armed, _ := z.Armed("south", clk.t.Add(48*time.Hour)); armed {
		t.Error("the south disarm did not survive a restart")
	}
	// Disarm north at 23:00 (armed) with no until: it lasts until the
	// schedule next changes by itself, 06:00.
	clk.t = time.Date(2026, 11, 25, 23, 0, 0, 0, cst)
	st, _ = z.Set("north", false, time.Time{}, "guard-desk", "")
	if st.Armed || st.Override.Until == nil || !st.Override.Until.Equal(time.Date(2026, 11, 26, 6, 0, 0, 0, cst)) {
		t.Errorf("default until: %+v", st.Override)
	}
	if st, _ = z.Clear("north", "guard-desk", ""); !st.Armed || st.By != "schedule" {
		t.Errorf("after clear %+v", st)
	}
	al, _ := audit.New(db, nil)
	entries, _ := al.List(0, 100)
	var acts []string
	for _, e := range entries {
		acts = append(acts, e.Action+":"+e.Target+":"+e.Actor)
	}
	if got := strings.Join(acts, " "); got != "zone.arm:north:guard-desk zone.disarm:south:guard-desk zone.disarm:north:guard-desk zone.auto:north:guard-desk" {
		t.Errorf("audit: %s", got)
	}
}

const (
	guardTok    = apitest.Guard
	platformTok = apitest.Platform
)

func TestAPI(t *testing.T) {
	c := loadCfg(t)
	db := openDB(t, t.TempDir()+"/z.db")
	defer db.Close()
	clk := &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, cst)}
	z := newZones(t, c, db, clk)
	srv := apitest.Serve(t, api.Options{}, api.Handlers{Zones: z.HTTP()})
	do := func(method, path, tok, body string) (int, map[string]any) {
		t.Helper()
		return apitest.Do(t, method, srv.URL+path, tok, body)
	}
	code, m := do("GET", "/api/v1/zones", platformTok, "")
	zs, _ := m["zones"].([]any)
	if code != 200 || len(zs) != 2 {
		t.Fatalf("GET %d %v", code, m)
	}
	north := zs[0].(map[string]any)
	if north["name"] != "north" || north["armed"] != false || north["by"] != "schedule" || north["next_change"] != "2026-11-25T22:00:00+08:00" {
		t.Errorf("north %v", north)
	}
	if code, _ := do("POST", "/api/v1/zones/north/arm", platformTok, ""); code != 403 {
		t.Errorf("platform arm: %d, want 403", code)
	}
	code, m = do("POST", "/api/v1/zones/north/arm", guardTok, `{"until":"2h","note":"suspicious car"}`)
	if code != 200 || m["armed"] != true || m["by"] != "override" {
		t.Errorf("arm: %d %v", code, m)
	}
	if ov, _ := m["override"].(map[string]any); ov["by"] != "guard-desk" || ov["until"] != "2026-11-25T06:00:00Z" {
		t.Errorf("override %v", m["override"])
	}
	if armed, _ := z.Armed("north", clk.t.Add(time.Hour)); !armed {
		t.Error("API arm did not take effect")
	}
	code, m = do("POST", "/api/v1/zones/south/disarm", guardTok, "")
	if code != 200 || m["armed"] != false {
		t.Errorf("disarm with no body: %d %v", code, m)
	}
	for _, k := range []struct {
		path, body string
		code       int
	}{
		{"/api/v1/zones/nowhere/arm", "", 404},
		{"/api/v1/zones/north/arm", `{"until":"yesterday"}`, 400},
		{"/api/v1/zones/north/arm", `{"until":"2020-01-01T00:00:00Z"}`, 400},
		{"/api/v1/zones/north/arm", `{"until":"-1h"}`, 400},
		{"/api/v1/zones/north/arm", `{"colour":"red"}`, 400},
		{"/api/v1/zones/north/auto", `{"until":"2h"}`, 400},
	} {
		if code, m := do("POST", k.path, guardTok, k.body); code != k.code {
			t.Errorf("POST %s %s: %d %v, want %d", k.path, k.body, code, m, k.code)
		}
	}
	code, m = do("POST", "/api/v1/zones/north/auto", guardTok, "")
	if code != 200 || m["by"] != "schedule" || m["armed"] != false {
		t.Errorf("auto: %d %v", code, m)
	}
}

func TestCheck(t *testing.T) {
	yml := `gateway: {id: gw}
alarms:
  zones:
    - name: north
      armed:
        - {days: [mon, funday], from: "22:00", to: "06:00"}
        - {from: "7:5", to: "25:00"}
        - {from: "08:00", to: "08:00"}
    - name: north
    - name: "bad zone"
`
	_, err := config.Parse("t.yaml", []byte(yml), zones.Check)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want config error, got %v", err)
	}
	want := map[string]int{
		"alarms.zones[0].armed[0].days[1]": 6,
		"alarms.zones[0].armed[1].from":    7,
		"alarms.zones[0].armed[1].to":      7,
		"alarms.zones[0].armed[2]":         8,
		"alarms.zones[1].name":             9,
		"alarms.zones[2].name":             10,
	}
	for _, p := range ce.Problems {
		if l, ok := want[p.Key]; ok && l == p.Line {
			delete(want, p.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v in\n%v", want, err)
	}
}
