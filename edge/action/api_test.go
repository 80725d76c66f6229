package action_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/gas"
	_ "github.com/smartcommunity/warden/drivers/gate"
	_ "github.com/smartcommunity/warden/drivers/siren"
	_ "github.com/smartcommunity/warden/drivers/valve"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

const (
	guardToken    = "guard-token-0123456789"
	platformToken = "platform-token-0123456789"
	adminToken    = "admin-token-0123456789"
)

type seen struct {
	mu  sync.Mutex
	got []string
}

func (s *seen) add(v string) { s.mu.Lock(); s.got = append(s.got, v); s.mu.Unlock() }
func (s *seen) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// waitFor polls until the subscriber has seen n commands.
func (s *seen) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := s.list(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("saw %v, want %d commands", s.list(), n)
	return nil
}

type apiRig struct {
	t     *testing.T
	srv   *httptest.Server
	cmds  *seen
	audit *audit.Log
	act   *action.Actuators
}

func newAPIRig(t *testing.T) *apiRig {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	devs := []config.Device{
		{ID: "gate-north", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-north"},
		{ID: "siren-3", Kind: "siren", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/siren-3"},
		{ID: "valve-1", Kind: "gas_valve", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/valve-1"},
		{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-1"},
	}
	st := storetest.Open(t, store.Options{Logger: log})
	al, err := audit.New(st.DB(), log)
	if err != nil {
		t.Fatal(err)
	}
	act, err := action.NewActuators(devs, drivers.Default, al, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := bustest.Embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmds := &seen{}
	sub, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "actuator-bridge", Logger: log,
		Subscriptions: []string{"lpr/+/set", "zigbee2mqtt/+/set"},
		OnMessage:     func(m *bus.Message) { cmds.add(m.Topic + " " + string(m.Payload)); m.Ack() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	pub, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "warden-gw", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	act.SetPublisher(pub)

	s := api.New(api.Options{Events: st, Logger: log, Tokens: []config.Token{
		{Name: "guard-desk", Token: guardToken, Role: "guard"},
		{Name: "platform", Token: platformToken, Role: "platform"},
		{Name: "root", Token: adminToken, Role: "admin"},
	}})
	s.Mount(api.Handlers{Actions: act.HTTP()})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &apiRig{t: t, srv: srv, cmds: cmds, audit: al, act: act}
}

func (r *apiRig) do(method, path, token, body string) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, r.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.NewDecoder(bytes.NewReader(b)).Decode(&out)
	return resp.StatusCode, out
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
		{"gate-north", guardToken, `{"action":"open","note":"visitor without pass, called 3-2-201"}`, 200},
		{"gate-north", platformToken, `{"action":"open"}`, 403}, // route needs guard
		{"nope", guardToken, `{"action":"open"}`, 404},
		{"gas-1", guardToken, `{"action":"close"}`, 404}, // not commandable
		{"gate-north", guardToken, `{"action":"explode"}`, 400},
		{"gate-north", guardToken, `{"action":"on"}`, 400},
		{"gate-north", guardToken, `{"action":"open","extra":1}`, 400},
		{"siren-3", guardToken, `{"action":"off"}`, 200},
		{"valve-1", guardToken, `{"action":"close"}`, 200},
		{"valve-1", guardToken, `{"action":"open","note":"fixed"}`, 403}, // reopening gas: admin only
		{"valve-1", adminToken, `{"action":"open"}`, 400},                // and a note
		{"valve-1", adminToken, `{"action":"open","note":"   "}`, 400},   // a blank one is none
		{"valve-1", adminToken, `{"action":"open","note":"leak fixed by gas company, ticket 4411"}`, 200},
	}
	for _, s := range steps {
		if got := r.command(s.id, s.token, s.body); got != s.want {
			t.Fatalf("%s %s as %s = %d, want %d", s.id, s.body, s.token[:5], got, s.want)
		}
	}
	got := r.cmds.waitFor(t, 4)
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
	code, body := r.do("GET", "/api/v1/audit?limit=100", adminToken, "")
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
	code, page := r.do("GET", "/api/v1/audit?after=2&limit=2", adminToken, "")
	if es := page["entries"].([]any); code != 200 || len(es) != 2 || es[0].(map[string]any)["id"].(float64) != 3 || page["next"].(float64) != 4 {
		t.Fatalf("page = %d %v", code, page)
	}
	if code, _ := r.do("GET", "/api/v1/audit", guardToken, ""); code != 403 {
		t.Fatalf("guard GET audit = %d", code)
	}
	if code, _ := r.do("GET", "/api/v1/audit?limit=x", adminToken, ""); code != 400 {
		t.Fatalf("bad limit = %d", code)
	}
}
