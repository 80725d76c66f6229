package gate_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/gate"
	"github.com/smartcommunity/warden/edge/action/actiontest"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/gate"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/store"
)

var cst = time.FixedZone("CST", 8*3600)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type rig struct {
	t      *testing.T
	clk    *clock
	st     *store.Store
	ctl    *gate.Controller
	router *ingest.Router
	srv    *httptest.Server
	cmds   *actiontest.Commands
	audit  *audit.Log
}

func newRig(t *testing.T, gc config.Gate) *rig {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, cst)}
	devs := []config.Device{
		{ID: "gate-north", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-north"},
		{ID: "gate-east", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-east"},
	}
	bench := actiontest.New(t, devs, "lpr/+/set")
	st, al, act := bench.Store, bench.Audit, bench.Act
	ctl, err := gate.New(gate.Options{Gateway: "gw", Site: "s", Config: gc, Devices: devs, Opener: act,
		DB: st.DB(), Audit: al, Now: clk.Now, Location: cst, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	router, err := ingest.New(ingest.Options{Gateway: "gw", Site: "s", Devices: devs, Registry: drivers.Default, Store: st,
		Actors: []ingest.Actor{ctl}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.Serve(t, api.Options{Events: st, Logger: log}, api.Handlers{Gate: ctl.HTTP(), Actions: act.HTTP()})
	return &rig{t: t, clk: clk, st: st, ctl: ctl, router: router, srv: srv, cmds: bench.Commands, audit: al}
}

// read feeds a plate read at time at and returns the events committed for it.
func (r *rig) read(gateID, plate, dir string, at time.Time) []event.Event {
	r.t.Helper()
	r.clk.Set(at)
	before := r.st.LastSeq()
	payload, _ := json.Marshal(map[string]any{"plate": plate, "direction": dir})
	done := make(chan struct{})
	r.router.Handle(ingest.Message{Topic: "lpr/" + gateID, Payload: payload, Received: at, Ack: func() { close(done) }})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.t.Fatal("plate read not committed")
	}
	evs, _, err := r.st.Read(before, 100, store.Filter{})
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

func (r *rig) do(method, path, token string, body any) (int, map[string]any) {
	r.t.Helper()
	return apitest.Do(r.t, method, r.srv.URL+path, token, body)
}

func decision(t *testing.T, evs []event.Event) (vehicle event.Event, denied *event.Event) {
	t.Helper()
	for i, e := range evs {
		switch e.Type {
		case event.GateVehicle:
			vehicle = e
		case event.GateDenied:
			denied = &evs[i]
		}
	}
	if vehicle.Type == "" {
		t.Fatalf("no gate.vehicle in %v", evs)
	}
	return vehicle, denied
}

const openNorth = `lpr/gate-north/set {"command":"open"}`

func TestResidentOpensUnknownAndBlockedDenied(t *testing.T) {
	r := newRig(t, config.Gate{Residents: []string{"京A·12345"}, Blocked: []string{"粤Z 00000"}})
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, cst) // residents pass at night too

	v, denied := decision(t, r.read("gate-north", "京a-12345", "in", at))
	if v.Data["decision"] != gate.Allowed || v.Data["reason"] != gate.ReasonResident || denied != nil {
		t.Fatalf("resident: %+v denied=%v", v.Data, denied)
	}
	if got := r.cmds.WaitFor(t, 1); got[0] != openNorth {
		t.Fatalf("command = %q", got[0])
	}

	v, denied = decision(t, r.read("gate-north", "沪C99999", "in", at.Add(time.Minute)))
	if v.Data["decision"] != gate.Denied || denied == nil || denied.Severity != event.Warning ||
		denied.Data["reason"] != gate.ReasonUnknown || denied.Data["vehicle_event"] != v.ID || denied.Data["plate"] != "沪C99999" {
		t.Fatalf("unknown: vehicle %+v denied %+v", v.Data, denied)
	}

	v, denied = decision(t, r.read("gate-north", "粤Z00000", "in", at.Add(2*time.Minute)))
	if v.Data["decision"] != gate.Denied || denied == nil || denied.Severity != event.Critical || denied.Data["reason"] != gate.ReasonBlocked {
		t.Fatalf("blocked: vehicle %+v denied %+v", v.Data, denied)
	}
	// A blocked car leaving is still denied; any other car leaving opens.
	_, denied = decision(t, r.read("gate-north", "粤Z00000", "out", at.Add(3*time.Minute)))
	if denied == nil || denied.Severity != event.Critical {
		t.Fatal("blocked plate leaving was not denied")
	}
	v, _ = decision(t, r.read("gate-north", "沪C99999", "out", at.Add(4*time.Minute)))
	if v.Data["decision"] != gate.Allowed || v.Data["reason"] != gate.ReasonExit {
		t.Fatalf("exit: %+v", v.Data)
	}
	// Denied reads sent nothing: the second command is the exit's.
	if got := r.cmds.WaitFor(t, 2); len(got) != 2 || got[1] != openNorth {
		t.Fatalf("commands = %v", got)
	}
}

func TestRepeatIsOneDecision(t *testing.T) {
	r := newRig(t, config.Gate{Residents: []string{"京A12345"}})
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, cst)
	if evs := r.read("gate-north", "沪C99999", "in", at); len(evs) != 2 {
		t.Fatalf("first read: %d events", len(evs))
	}
	if evs := r.read("gate-north", "沪C 99999", "in", at.Add(3*time.Second)); len(evs) != 0 {
		t.Fatalf("repeat within 10s: %v", evs)
	}
	if evs := r.read("gate-north", "沪C99999", "in", at.Add(20*time.Second)); len(evs) != 2 {
		t.Fatalf("after the repeat window: %d events", len(evs))
	}
	// An allowed repeat gets the open command again, without an event.
	r.read("gate-north", "京A12345", "in", at.Add(time.Minute))
	if evs := r.read("gate-north", "京A12345", "in", at.Add(time.Minute+2*time.Second)); len(evs) != 0 {
		t.Fatalf("allowed repeat: %v", evs)
	}
	r.cmds.WaitFor(t, 2)
}

func TestTimeOfDayRule(t *testing.T) {
	w, _ := config.ParseWindow("07:00-20:00")
	r := newRig(t, config.Gate{
		Allow:      []config.GateAllow{{Plate: "京C55555", Group: "delivery", Gates: []string{"gate-north"}}},
		GroupHours: map[string]config.Window{"delivery": w},
	})
	day := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, cst) }
	cases := []struct {
		gate   string
		at     time.Time
		want   string
		reason string
	}{
		{"gate-north", day(6, 59), gate.Denied, gate.ReasonHours},
		{"gate-north", day(7, 0), gate.Allowed, gate.ReasonAllowed},
		{"gate-north", day(19, 59), gate.Allowed, gate.ReasonAllowed},
		{"gate-north", day(20, 0), gate.Denied, gate.ReasonHours},
		{"gate-east", day(12, 0), gate.Denied, gate.ReasonUnknown}, // not listed for this gate
	}
	for _, c := range cases {
		v, denied := decision(t, r.read(c.gate, "京C55555", "in", c.at))
		if v.Data["decision"] != c.want || v.Data["reason"] != c.reason {
			t.Errorf("%s at %s: %v/%v, want %s/%s", c.gate, c.at.Format("15:04"), v.Data["decision"], v.Data["reason"], c.want, c.reason)
		}
		if (c.want == gate.Denied) != (denied != nil) {
			t.Errorf("%s at %s: gate.denied = %v", c.gate, c.at.Format("15:04"), denied)
		}
		if c.want == gate.Allowed && v.Data["group"] != "delivery" {
			t.Errorf("group = %v", v.Data["group"])
		}
	}
	if got := r.cmds.WaitFor(t, 2); len(got) != 2 {
		t.Fatalf("commands = %v", got)
	}
}

func TestVisitorPassAPIAndWindow(t *testing.T) {
	r := newRig(t, config.Gate{})
	noon := r.clk.Now()
	from, until := noon.Add(time.Hour), noon.Add(3*time.Hour)

	// Platform tokens may not manage passes; bad bodies are 400.
	if code, _ := r.do("POST", "/api/v1/gate/passes", apitest.Platform, map[string]any{"plate": "沪B12345", "until": until}); code != http.StatusForbidden {
		t.Fatalf("platform POST = %d", code)
	}
	for _, bad := range []map[string]any{
		{"plate": "", "until": until},
		{"plate": "沪B12345"},
		{"plate": "沪B12345", "from": until, "until": from},
		{"plate": "沪B12345", "until": until, "gates": []string{"gate-nowhere"}},
		{"plate": "沪B12345", "until": until, "colour": "red"},
	} {
		if code, body := r.do("POST", "/api/v1/gate/passes", apitest.Guard, bad); code != http.StatusBadRequest {
			t.Fatalf("POST %v = %d %v", bad, code, body)
		}
	}
	code, p := r.do("POST", "/api/v1/gate/passes", apitest.Guard, map[string]any{
		"plate": "沪B-12345", "from": from, "until": until, "note": "plumber for 3-2-201", "gates": []string{"gate-north"}})
	if code != http.StatusCreated || p["id"] == "" || p["created_by"] != "guard-desk" || p["active"] != false {
		t.Fatalf("POST = %d %v", code, p)
	}
	id := p["id"].(string)

	// Before, inside, after the window; and at a gate it does not cover.
	v, _ := decision(t, r.read("gate-north", "沪B12345", "in", from.Add(-time.Minute)))
	if v.Data["decision"] != gate.Denied || v.Data["reason"] != gate.ReasonHours {
		t.Fatalf("before the pass: %v", v.Data)
	}
	v, _ = decision(t, r.read("gate-north", "沪B12345", "in", from.Add(time.Minute)))
	if v.Data["decision"] != gate.Allowed || v.Data["reason"] != gate.ReasonVisitor || v.Data["pass_id"] != id {
		t.Fatalf("inside the pass: %v", v.Data)
	}
	v, _ = decision(t, r.read("gate-east", "沪B12345", "in", from.Add(2*time.Minute)))
	if v.Data["decision"] != gate.Denied {
		t.Fatalf("other gate: %v", v.Data)
	}
	v, _ = decision(t, r.read("gate-north", "沪B12345", "in", until))
	if v.Data["decision"] != gate.Denied {
		t.Fatalf("after the pass: %v", v.Data)
	}
	if got := r.cmds.WaitFor(t, 1); got[0] != openNorth {
		t.Fatalf("commands = %v", got)
	}

	r.clk.Set(from.Add(time.Minute))
	code, list := r.do("GET", "/api/v1/gate/passes", apitest.Guard, nil)
	passes, _ := list["passes"].([]any)
	if code != http.StatusOK || len(passes) != 1 || passes[0].(map[string]any)["active"] != true {
		t.Fatalf("GET = %d %v", code, list)
	}
	if code, _ := r.do("DELETE", "/api/v1/gate/passes/"+id, apitest.Guard, nil); code != http.StatusOK {
		t.Fatalf("DELETE = %d", code)
	}
	if code, _ := r.do("DELETE", "/api/v1/gate/passes/"+id, apitest.Guard, nil); code != http.StatusNotFound {
		t.Fatalf("second DELETE = %d", code)
	}
	v, _ = decision(t, r.read("gate-north", "沪B12345", "in", from.Add(time.Hour)))
	if v.Data["decision"] != gate.Denied || v.Data["reason"] != gate.ReasonUnknown {
		t.Fatalf("after delete: %v", v.Data)
	}

	es, err := r.audit.List(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		if e.Actor != "guard-desk" || e.Target != id {
			t.Fatalf("audit entry %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if len(actions) != 2 || actions[0] != "gate.pass.create" || actions[1] != "gate.pass.delete" {
		t.Fatalf("audit = %v", actions)
	}
}

func TestPassesSurviveRestart(t *testing.T) {
	r := newRig(t, config.Gate{})
	until := r.clk.Now().Add(time.Hour)
	if code, _ := r.do("POST", "/api/v1/gate/passes", apitest.Guard, map[string]any{"plate": "沪B12345", "until": until}); code != http.StatusCreated {
		t.Fatal(code)
	}
	ctl2, err := gate.New(gate.Options{Config: config.Gate{}, Opener: nopOpener{}, DB: r.st.DB(), Now: r.clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ctl2.Decide("gate-north", "沪B 12345", "in", r.clk.Now()); !d.Allowed || d.Reason != gate.ReasonVisitor {
		t.Fatalf("after reopen: %+v", d)
	}
}

type nopOpener struct{}

func (nopOpener) Send(string, string) error { return nil }

func TestPlatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plates.yaml")
	if err := os.WriteFile(path, []byte("residents: [\"京A88888\"]\nblocked: [\"京A44444\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := gate.New(gate.Options{Config: config.Gate{PlatesFile: path}, Opener: nopOpener{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if d := ctl.Decide("g", "京A88888", "in", now); !d.Allowed {
		t.Fatalf("file resident: %+v", d)
	}
	if d := ctl.Decide("g", "京A44444", "in", now); d.Allowed || d.Reason != gate.ReasonBlocked {
		t.Fatalf("file blocked: %+v", d)
	}
	if err := os.WriteFile(path, []byte("residents: [\"京A88888\"]\ncolour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps := gate.Check(&config.Config{Gate: config.Gate{PlatesFile: path}}); len(ps) != 1 {
		t.Fatalf("Check of a bad plates file = %v", ps)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"京A·12345":  "京A12345",
		"京a-12345":  "京A12345",
		" 沪B D7788": "沪BD7788",
		"粤Ｂ１２３４５":   "粤B12345",
		"ab.c_d":    "ABCD",
		"":          "",
	} {
		if got := gate.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if ps := gate.Check(&config.Config{Gate: config.Gate{Residents: []string{"--"}, Allow: []config.GateAllow{{Plate: "京A1", Gates: []string{"nope"}}}}}); len(ps) != 2 {
		t.Fatalf("Check = %v", ps)
	}
}
