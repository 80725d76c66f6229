package action_test

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	_ "github.com/smartcommunity/warden/drivers/gas"
	_ "github.com/smartcommunity/warden/drivers/gate"
	_ "github.com/smartcommunity/warden/drivers/siren"
	_ "github.com/smartcommunity/warden/drivers/valve"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/action/actiontest"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/api/apitest"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
)

type apiRig struct {
	t     *testing.T
	srv   *httptest.Server
	cmds  *actiontest.Commands
	audit *audit.Log
	act   *action.Actuators
}

func newAPIRig(t *testing.T) *apiRig {
	t.Helper()
	b := actiontest.New(t, []config.Device{
		{ID: "gate-north", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-north"},
		{ID: "siren-3", Kind: "siren", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/siren-3"},
		{ID: "valve-1", Kind: "gas_valve", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/valve-1"},
		{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-1"},
	}, "lpr/+/set", "zigbee2mqtt/+/set")
	srv := apitest.Serve(t, api.Options{Events: b.Store, Logger: slog.New(slog.DiscardHandler)}, api.Handlers{Actions: b.Act.HTTP()})
	return &apiRig{t: t, srv: srv, cmds: b.Commands, audit: b.Audit, act: b.Act}
}

func (r *apiRig) do(method, path, token, body string) (int, map[string]any) {
	r.t.Helper()
	return apitest.Do(r.t, method, r.srv.URL+path, token, body)
}

func (r *apiRig) command(id, token, body string) int {
	r.t.Helper()
	code, _ := r.do("POST", "/api/v1/devices/"+id+"/command", token, body)
	return code
}

func TestCommandRoute(t *testing.T) {
	r := newAPIRig(t)
	steps := []struct {
		id, token, body string
		want            int
	}{
		{"gate-north", apitest.Guard, `{"action":"open","note":"visitor without pass, called 3-2-201"}`, 200},
		{"gate-north", apitest.Platform, `{"action":"open"}`, 403}, // route needs guard
		{"nope", apitest.Guard, `{"action":"open"}`, 404},
		{"gas-1", apitest.Guard, `{"action":"close"}`, 404}, // not commandable
		{"gate-north", apitest.Guard, `{"action":"explode"}`, 400},
		{"gate-north", apitest.Guard, `{"action":"on"}`, 400},
		{"gate-north", apitest.Guard, `{"action":"open","extra":1}`, 400},
		{"siren-3", apitest.Guard, `{"action":"off"}`, 200},
		{"valve-1", apitest.Guard, `{"action":"close"}`, 200},
		{"valve-1", apitest.Guard, `{"action":"open","note":"fixed"}`, 403}, // reopening gas: admin only
		{"valve-1", apitest.Admin, `{"action":"open"}`, 400},                // and a note
		{"valve-1", apitest.Admin, `{"action":"open","note":"   "}`, 400},   // a blank one is none
		{"valve-1", apitest.Admin, `{"action":"open","note":"leak fixed by gas company, ticket 4411"}`, 200},
	}
	for _, s := range steps {
		if got := r.command(s.id, s.token, s.body); got != s.want {
			t.Fatalf("%s %s as %s = %d, want %d", s.id, s.body, s.token[:5], got, s.want)
		}
	}
	got := r.cmds.WaitFor(t, 4)
	want := []string{
		`lpr/gate-north/set {"command":"open"}`,
		`zigbee2mqtt/siren-3/set`,
		`zigbee2mqtt/valve-1/set {"state":"OFF"}`,
		`zigbee2mqtt/valve-1/set {"state":"ON"}`,
	}
	if len(got) != len(want) {
		t.Fatalf("commands = %v", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("command %d = %q, want %q…", i, got[i], want[i])
		}
	}

	// The audit log has every carried-out command with its actor, and the
	// refused valve reopenings (not the requests rejected before the device
	// was known to be commanded).
	code, body := r.do("GET", "/api/v1/audit?limit=100", apitest.Admin, "")
	if code != 200 {
		t.Fatalf("GET audit = %d %v", code, body)
	}
	entries := body["entries"].([]any)
	type row struct{ actor, action, target, err string }
	var rows []row
	for _, e := range entries {
		m := e.(map[string]any)
		errS, _ := m["error"].(string)
		rows = append(rows, row{m["actor"].(string), m["action"].(string), m["target"].(string), errS})
	}
	wantRows := []row{
		{"guard-desk", "device.open", "gate-north", ""},
		{"guard-desk", "device.off", "siren-3", ""},
		{"guard-desk", "device.close", "valve-1", ""},
		{"guard-desk", "device.open", "valve-1", "forbidden: needs role admin"},
		{"root", "device.open", "valve-1", "refused: a note is required"},
		{"root", "device.open", "valve-1", "refused: a note is required"},
		{"root", "device.open", "valve-1", ""},
	}
	if len(rows) != len(wantRows) {
		t.Fatalf("audit rows = %+v", rows)
	}
	for i := range wantRows {
		if rows[i] != wantRows[i] {
			t.Fatalf("audit row %d = %+v, want %+v", i, rows[i], wantRows[i])
		}
	}
	first := entries[0].(map[string]any)
	if first["detail"].(map[string]any)["note"] != "visitor without pass, called 3-2-201" {
		t.Fatalf("note not audited: %v", first)
	}

	// Code can never open a valve: only a person through Do, with a note.
	if err := r.act.Send("valve-1", "open"); !errors.Is(err, action.ErrNeedsPerson) {
		t.Errorf("Send(valve-1, open) = %v, want ErrNeedsPerson", err)
	}
	if err := r.act.Do("valve-1", "open", "rule", " "); !errors.Is(err, action.ErrNeedsPerson) {
		t.Errorf("Do without a note = %v, want ErrNeedsPerson", err)
	}

	// Paging and roles of the audit route.
	code, page := r.do("GET", "/api/v1/audit?after=2&limit=2", apitest.Admin, "")
	if es := page["entries"].([]any); code != 200 || len(es) != 2 || es[0].(map[string]any)["id"].(float64) != 3 || page["next"].(float64) != 4 {
		t.Fatalf("page = %d %v", code, page)
	}
	if code, _ := r.do("GET", "/api/v1/audit", apitest.Guard, ""); code != 403 {
		t.Fatalf("guard GET audit = %d", code)
	}
	if code, _ := r.do("GET", "/api/v1/audit?limit=x", apitest.Admin, ""); code != 400 {
		t.Fatalf("bad limit = %d", code)
	}
}
