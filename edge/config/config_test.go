package config_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"

	"github.com/smartcommunity/warden/edge/config"
)

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return c
}

// parseErr parses src and returns its problems; it fails when src loads.
func parseErr(t *testing.T, src string) []config.Problem {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(src))
	if err == nil {
		t.Fatalf("config loaded, want an error: %+v", c)
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *config.Error", err, err)
	}
	if len(ce.Problems) == 0 {
		t.Fatalf("config.Error without problems: %v", err)
	}
	return ce.Problems
}

func findProblem(ps []config.Problem, key string) (config.Problem, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p, true
		}
	}
	return config.Problem{}, false
}

func TestShippedConfigsLoad(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, name := range []string{"warden.yaml", "demo.yaml"} {
		t.Run(name, func(t *testing.T) {
			c := mustLoad(t, filepath.Join(root, "configs", name))
			if c.Gateway.ID == "" {
				t.Fatal("gateway.id is empty")
			}
		})
	}
}

func TestDemoConfig(t *testing.T) {
	c := mustLoad(t, filepath.Join(testenv.RepoRoot(t), "configs", "demo.yaml"))
	if c.Gateway.ID != "gw-demo" {
		t.Errorf("gateway.id = %q, want gw-demo", c.Gateway.ID)
	}
	if !c.MQTT.Embedded.AllowAnonymous || c.MQTT.Embedded.Listen != "127.0.0.1:1883" || c.MQTT.Broker != "" {
		t.Errorf("demo broker: %+v broker=%q, want anonymous embedded on 127.0.0.1:1883", c.MQTT.Embedded, c.MQTT.Broker)
	}
	if c.API.Listen != "127.0.0.1:8080" {
		t.Errorf("api.listen = %q", c.API.Listen)
	}
	roles := map[string]bool{}
	for _, tok := range c.API.Tokens {
		roles[tok.Role] = true
	}
	if !roles["guard"] || !roles["admin"] {
		t.Errorf("demo tokens have roles %v, want guard and admin", roles)
	}
	// scripts/demo.sh streams with this token.
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`TOKEN:-([^}]+)\}`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/demo.sh has no TOKEN default")
	}
	found := false
	for _, tok := range c.API.Tokens {
		found = found || (tok.Token == string(m[1]) && tok.Role == "guard")
	}
	if !found {
		t.Errorf("scripts/demo.sh token %q is not a guard token in configs/demo.yaml", m[1])
	}

	want := map[string]struct{ kind, driver string }{
		"gas-3-2-201":   {"gas_detector", "zigbee2mqtt"},
		"valve-3-2-201": {"gas_valve", "zigbee2mqtt"},
		"siren-3":       {"siren", "zigbee2mqtt"},
		"sos-5-2-301":   {"wristband", "tuya"},
		"gate-north":    {"barrier_gate", "hikvision"},
	}
	perimeter := false
	for _, d := range c.Devices {
		if d.Location == (config.Device{}).Location {
			t.Errorf("device %s has no location", d.ID)
		}
		if d.Kind == "perimeter" && d.Driver == "zigbee2mqtt" {
			perimeter = true
		}
		if w, ok := want[d.ID]; ok {
			if d.Kind != w.kind || d.Driver != w.driver {
				t.Errorf("device %s is %s/%s, want %s/%s", d.ID, d.Kind, d.Driver, w.kind, w.driver)
			}
			delete(want, d.ID)
		}
		if d.ID == "gas-3-2-201" && (d.Extra["valve"] != "valve-3-2-201" || d.Extra["siren"] != "siren-3") {
			t.Errorf("gas-3-2-201 extra = %v, want valve valve-3-2-201 and siren siren-3", d.Extra)
		}
	}
	if len(want) > 0 {
		t.Errorf("devices missing from demo.yaml: %v", want)
	}
	if !perimeter {
		t.Error("no zigbee2mqtt perimeter device in demo.yaml")
	}
}

// TestReferenceShowsDefaults checks that the values configs/warden.yaml
// presents as defaults are the ones the loader applies.
func TestReferenceShowsDefaults(t *testing.T) {
	ref := mustLoad(t, filepath.Join(testenv.RepoRoot(t), "configs", "warden.yaml"))
	def, err := config.Parse("min.yaml", []byte("gateway: {id: gw-east}\ncameras: [{id: c, url: x.mp4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		ref, want any
	}{
		{"gateway.data_dir", ref.Gateway.DataDir, def.Gateway.DataDir},
		{"log", ref.Log, def.Log},
		{"mqtt.embedded.listen", ref.MQTT.Embedded.Listen, def.MQTT.Embedded.Listen},
		{"mqtt.embedded.allow_anonymous", ref.MQTT.Embedded.AllowAnonymous, def.MQTT.Embedded.AllowAnonymous},
		{"mqtt.embedded.max_inflight", ref.MQTT.Embedded.MaxInflight, def.MQTT.Embedded.MaxInflight},
		{"mqtt.embedded.persist", *ref.MQTT.Embedded.Persist, *def.MQTT.Embedded.Persist},
		{"mqtt.broker", ref.MQTT.Broker, def.MQTT.Broker},
		{"mqtt.client_id", ref.MQTT.ClientID, def.MQTT.ClientID},
		{"mqtt.tls", ref.MQTT.TLS, def.MQTT.TLS},
		{"mqtt.max_payload_bytes", ref.MQTT.MaxPayloadBytes, def.MQTT.MaxPayloadBytes},
		{"api.listen", ref.API.Listen, def.API.Listen},
		{"api.metrics_public", ref.API.MetricsPublic, def.API.MetricsPublic},
		{"api.max_body_bytes", ref.API.MaxBodyBytes, def.API.MaxBodyBytes},
		{"api.tls", ref.API.TLS, def.API.TLS},
		{"api.session_ttl", ref.API.SessionTTL, def.API.SessionTTL},
		{"alarms.escalate_after", ref.Alarms.EscalateAfter, def.Alarms.EscalateAfter}, // alarms.zones shows an example
		{"uplink.batch", ref.Uplink.Batch, def.Uplink.Batch},
		{"uplink.linger", ref.Uplink.Linger, def.Uplink.Linger},
		{"uplink.max_backlog_bytes", ref.Uplink.MaxBacklogBytes, def.Uplink.MaxBacklogBytes},
		{"uplink.min_backoff", ref.Uplink.MinBackoff, def.Uplink.MinBackoff},
		{"uplink.max_backoff", ref.Uplink.MaxBackoff, def.Uplink.MaxBackoff},
		{"retention", ref.Retention, def.Retention},
		{"store", ref.Store, def.Store},
		{"cameras[].record.pre_seconds", ref.Cameras[0].Record.PreSeconds, def.Cameras[0].Record.PreSeconds},
		{"cameras[].record.post_seconds", ref.Cameras[0].Record.PostSeconds, def.Cameras[0].Record.PostSeconds},
		{"cameras[].detect.fps", ref.Cameras[0].Detect.FPS, def.Cameras[0].Detect.FPS},
		{"cameras[].offline_grace", ref.Cameras[0].OfflineGrace, def.Cameras[0].OfflineGrace},
		{"cameras[].stall_timeout", ref.Cameras[0].StallTimeout, def.Cameras[0].StallTimeout},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.ref, c.want) {
			t.Errorf("configs/warden.yaml %s = %v, but the default is %v", c.key, c.ref, c.want)
		}
	}
}

// TestReferenceHasEveryKey is the drift guard: a field added to config.Config
// must be documented in configs/warden.yaml.
func TestReferenceHasEveryKey(t *testing.T) {
	have := testenv.ReferenceKeys(t)
	want := config.StructKeys(reflect.TypeOf(config.Config{}))
	if len(want) < 50 {
		t.Fatalf("walked only %d keys of config.Config; the walker is broken", len(want))
	}
	var missing []string
	for _, k := range want {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	for _, k := range missing {
		t.Errorf("configs/warden.yaml does not show key %s (add it with its default and a comment)", k)
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	ps := parseErr(t, "gateway:\n  id: gw-east\n  colour: red\n")
	p, ok := findProblem(ps, "gateway.colour")
	if !ok {
		t.Fatalf("no problem for gateway.colour in %v", ps)
	}
	if p.Line != 3 || !strings.Contains(p.Msg, "unknown key") {
		t.Errorf("problem = %v, want line 3 and 'unknown key'", p)
	}
	// Unknown keys inside list entries too.
	ps = parseErr(t, "gateway: {id: gw}\ncameras:\n  - id: c1\n    url: a.mp4\n    recrod: {}\n")
	if p, ok := findProblem(ps, "cameras[0].recrod"); !ok || p.Line != 5 {
		t.Errorf("problems = %v, want cameras[0].recrod at line 5", ps)
	}
}

func TestWrongType(t *testing.T) {
	ps := parseErr(t, "gateway: {id: gw}\nretention:\n  events_days: many\n")
	p, ok := findProblem(ps, "retention.events_days")
	if !ok || p.Line != 3 || !strings.Contains(p.Msg, "wrong type") {
		t.Errorf("problems = %v, want retention.events_days line 3 'wrong type'", ps)
	}
	ps = parseErr(t, "gateway: {id: gw}\nalarms:\n  escalate_after: soon\n")
	if p, ok := findProblem(ps, "alarms.escalate_after"); !ok || p.Line != 3 || !strings.Contains(p.Msg, "duration") {
		t.Errorf("problems = %v, want alarms.escalate_after line 3 about a duration", ps)
	}
}

func TestDuplicateDeviceID(t *testing.T) {
	src := `gateway: {id: gw}
devices:
  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: z/gas-1}
  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: z/gas-1b}
cameras:
  - {id: gas-1, url: x.mp4}
`
	ps := parseErr(t, src)
	p, ok := findProblem(ps, "devices[1].id")
	if !ok || p.Line != 4 || !strings.Contains(p.Msg, "duplicate") {
		t.Errorf("problems = %v, want devices[1].id duplicate at line 4", ps)
	}
	if p, ok := findProblem(ps, "cameras[0].id"); !ok || p.Line != 6 {
		t.Errorf("problems = %v, want cameras[0].id duplicate at line 6", ps)
	}
}

func TestSeveralProblemsAtOnce(t *testing.T) {
	src := `gateway:
  site: x
  mood: calm
log: {level: loud}
api:
  tokens:
    - {name: t, token: short, role: janitor}
retention:
  events_days: lots
devices:
  - {id: d1, kind: toaster, driver: x, topic: "a/#"}
alarms: {escalate_after: soon}
`
	ps := parseErr(t, src)
	for _, k := range []string{"alarms.escalate_after", "gateway.id", "gateway.mood", "log.level", "api.tokens[0].token", "api.tokens[0].role", "retention.events_days", "devices[0].kind", "devices[0].topic"} {
		if _, ok := findProblem(ps, k); !ok {
			t.Errorf("no problem for %s in %v", k, ps)
		}
	}
	if !sort.SliceIsSorted(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line }) {
		t.Errorf("problems not in line order: %v", ps)
	}
	_, err := config.Parse("site.yaml", []byte(src))
	msg := err.Error()
	if !strings.Contains(msg, "site.yaml:3: gateway.mood") || !strings.Contains(msg, "site.yaml:11: devices[0].kind") {
		t.Errorf("error text does not locate problems as file:line: key:\n%s", msg)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	ps := parseErr(t, "gateway:\n  id: gw\n  site: [unclosed\nlog: {}\n")
	if ps[0].Key != "(syntax)" || ps[0].Line == 0 {
		t.Errorf("problem = %v, want a (syntax) problem with a line", ps[0])
	}
	ps = parseErr(t, "gateway:\n  id: gw\n\tsite: tab\n")
	// yaml reports a bad tab on the line before it.
	if ps[0].Key != "(syntax)" || ps[0].Line < 2 || ps[0].Line > 3 {
		t.Errorf("problem = %v, want (syntax) at line 2 or 3", ps[0])
	}
}

func TestEmptyFile(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n"} {
		ps := parseErr(t, src)
		if _, ok := findProblem(ps, "gateway.id"); !ok {
			t.Errorf("%q: problems = %v, want gateway.id is required", src, ps)
		}
	}
}

func TestOversizedFile(t *testing.T) {
	data := append([]byte("gateway: {id: gw}\n#"), bytes.Repeat([]byte("x"), config.MaxFileBytes)...)
	ps := parseErr(t, string(data))
	if len(ps) != 1 || ps[0].Key != "(file)" || !strings.Contains(ps[0].Msg, "limit") {
		t.Errorf("problems = %v, want one (file) problem about the limit", ps)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.yaml") {
		t.Errorf("err = %v, want a not-exist error naming the file", err)
	}
}

func TestLineOfNestedKey(t *testing.T) {
	c, err := config.Parse("x.yaml", []byte("gateway: {id: gw}\ndevices:\n  - id: d1\n    kind: siren\n    driver: zigbee2mqtt\n    topic: z/d1\n    volume: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Line("devices[0].volume"); got != 7 {
		t.Errorf("Line(devices[0].volume) = %d, want 7", got)
	}
	if got := c.Line("devices[0].nothing"); got != 3 {
		t.Errorf("Line of an absent key = %d, want its parent's line 3", got)
	}
	if c.Devices[0].Extra["volume"] != 3 {
		t.Errorf("driver key not kept in Extra: %v", c.Devices[0].Extra)
	}
}

func TestChecksAddProblems(t *testing.T) {
	check := func(c *config.Config) []config.Problem {
		return []config.Problem{{Key: "devices[0].valve", Msg: "no such valve"}}
	}
	_, err := config.Parse("x.yaml", []byte("gateway: {id: gw}\ndevices:\n  - {id: d1, kind: gas_detector, driver: z, topic: z/d1, valve: v9}\n"), check)
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Line != 3 {
		t.Fatalf("err = %v, want one problem from the check located at line 3", err)
	}
}

// interfacesExample returns the config example of INTERFACES.md.
func interfacesExample(t *testing.T) []byte {
	path := filepath.Join(testenv.RepoRoot(t), "..", "shared", "INTERFACES.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("INTERFACES.md not available at %s: %v", path, err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(gateway:.*?)```").FindSubmatch(data)
	if m == nil {
		t.Fatal("no ```yaml block starting with gateway: in INTERFACES.md")
	}
	return m[1]
}

func TestInterfacesExampleLoads(t *testing.T) {
	c, err := config.Parse("INTERFACES.md", interfacesExample(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "gw-east" || len(c.Devices) != 3 || len(c.Cameras) != 2 || c.Uplink.HTTP == nil {
		t.Errorf("example decoded wrongly: gateway %+v, %d devices, %d cameras, uplink %+v", c.Gateway, len(c.Devices), len(c.Cameras), c.Uplink)
	}
	if c.Cameras[1].Detect.Throw == nil || c.Cameras[0].Detect.Throw != nil {
		t.Errorf("detector presence wrong: %+v", c.Cameras)
	}
}

func TestCameraOfflineGraceAndStallTimeout(t *testing.T) {
	c, err := config.Parse("x.yaml", []byte("gateway: {id: gw}\ncameras:\n  - {id: c1, url: a.mp4, offline_grace: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g, s := c.Cameras[0].OfflineGrace.D(), c.Cameras[0].StallTimeout.D(); g != 2*time.Minute || s != config.DefaultStallTimeout {
		t.Errorf("offline_grace %v, stall_timeout %v; want 2m and the default %v", g, s, config.DefaultStallTimeout)
	}
	ps := parseErr(t, "gateway: {id: gw}\ncameras:\n  - id: c1\n    url: a.mp4\n    stall_timeout: 200ms\n    offline_grace: -5s\n")
	if p, ok := findProblem(ps, "cameras[0].stall_timeout"); !ok || p.Line != 5 || !strings.Contains(p.Msg, "below 1s") {
		t.Errorf("problems = %v, want cameras[0].stall_timeout at line 5 'below 1s'", ps)
	}
	if p, ok := findProblem(ps, "cameras[0].offline_grace"); !ok || p.Line != 6 {
		t.Errorf("problems = %v, want cameras[0].offline_grace at line 6", ps)
	}
}

// Values that check-config once accepted, each with a bad effect: every one
// must be refused with its key and line.
func TestDangerousValuesRefused(t *testing.T) {
	cases := []struct {
		name, src, key string
		line           int
		msg            string
	}{
		{"bad window in a flow mapping names its own key, not the first on the line", "gateway: {id: gw}\nnotify:\n  targets:\n    - {name: g, kind: webhook, url: \"http://127.0.0.1:9/x\"}\n  routes:\n    - {types: [gas.leak], targets: [g], hours: \"25:00-26:00\"}\n", "notify.routes[0].hours", 6, "not a time window"},
		{"bad duration in a flow mapping names its own key", "gateway: {id: gw}\nuplink: {http: {url: \"http://p\"}, min_backoff: 1s, max_backoff: soon}\n", "uplink.max_backoff", 2, "not a duration"},
		{"Home Assistant prefix with a wildcard", "gateway: {id: gw}\nmqtt:\n  homeassistant: {enabled: true, prefix: \"ha/#\"}\n", "mqtt.homeassistant.prefix", 3, "not a topic prefix"},
		{"Home Assistant prefix under warden/ (the gateway's own topics)", "gateway: {id: gw}\nmqtt:\n  homeassistant:\n    enabled: true\n    prefix: warden/ha\n", "mqtt.homeassistant.prefix", 5, "not under warden/"},
		{"GA/T 1400 device id of 19 digits", "gateway: {id: gw}\nuplink:\n  gat1400:\n    url: http://viid:8080\n    device_id: \"3301029901119000025\"\n", "uplink.gat1400.device_id", 5, "20 digits"},
		{"GA/T 1400 url without scheme", "gateway: {id: gw}\nuplink:\n  gat1400:\n    url: viid:8080\n    device_id: \"33010299011190000253\"\n", "uplink.gat1400.url", 4, "http(s) URL"},
		{"GA/T 1400 keepalive of 0.1s", "gateway: {id: gw}\nuplink:\n  gat1400:\n    url: http://viid\n    device_id: \"33010299011190000253\"\n    keepalive: 100ms\n", "uplink.gat1400.keepalive", 6, "outside 1s..1h"},
		{"negative escalation turned escalation off", "gateway: {id: gw}\nalarms:\n  escalate_after: -1s\n", "alarms.escalate_after", 3, "below 1s"},
		{"events_days overflowing a duration deleted every event", "gateway: {id: gw}\nretention:\n  events_days: 202163959358895\n", "retention.events_days", 3, "outside 1..36500"},
		{"negative events_max_bytes", "gateway: {id: gw}\nretention:\n  events_max_bytes: -5\n", "retention.events_max_bytes", 3, "positive"},
		{"negative unknown_face_days", "gateway: {id: gw}\nretention:\n  unknown_face_days: -1\n", "retention.unknown_face_days", 3, "outside"},
		{"negative open_timeout", "gateway: {id: gw}\nstore:\n  open_timeout: -3s\n", "store.open_timeout", 3, "positive"},
		{"api port above 65535", "gateway: {id: gw}\napi:\n  listen: 127.0.0.1:70000\n", "api.listen", 3, "0..65535"},
		{"mqtt port above 65535", "gateway: {id: gw}\nmqtt:\n  embedded:\n    listen: \"0.0.0.0:99999\"\n", "mqtt.embedded.listen", 4, "0..65535"},
		{"device topic inside warden/", "gateway: {id: gw}\ndevices:\n  - {id: g1, kind: gas_detector, driver: zigbee2mqtt, topic: warden/gw/events/gas.leak}\n", "devices[0].topic", 3, "inside warden/"},
		{"max_packet_bytes not above max_payload_bytes", "gateway: {id: gw}\nmqtt:\n  embedded:\n    max_packet_bytes: 65536\n", "mqtt.embedded.max_packet_bytes", 4, "above mqtt.max_payload_bytes"},
		{"connect_timeout of zero seconds' worth", "gateway: {id: gw}\nmqtt:\n  embedded:\n    connect_timeout: 10ms\n", "mqtt.embedded.connect_timeout", 4, "outside 1s..5m"},
		{"command_users naming no user", "gateway: {id: gw}\nmqtt:\n  embedded:\n    command_users: [ha]\n", "mqtt.embedded.command_users[0]", 4, "not one of mqtt.embedded.users"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := parseErr(t, c.src)
			p, ok := findProblem(ps, c.key)
			if !ok || p.Line != c.line || !strings.Contains(p.Msg, c.msg) {
				t.Errorf("problems = %v, want %s at line %d saying %q", ps, c.key, c.line, c.msg)
			}
		})
	}
}

func TestSameTokenForTwoRolesRefused(t *testing.T) {
	// The second token is the first one's sha256: the same secret.
	src := `gateway: {id: gw}
api:
  tokens:
    - {name: desk, token: "guard-desk-token-0001", role: guard}
    - {name: boss, token: "sha256:` + sha256Hex("guard-desk-token-0001") + `", role: admin}
`
	ps := parseErr(t, src)
	if p, ok := findProblem(ps, "api.tokens[1].token"); !ok || p.Line != 5 || !strings.Contains(p.Msg, "api.tokens[0].token") {
		t.Errorf("problems = %v, want api.tokens[1].token at line 5 naming tokens[0]", ps)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// A mis-set notify section, priority, roster or label fails at start with
// the key and line: never a silent "nobody is told".
func TestBadNotifyAndAlarmKeys(t *testing.T) {
	src := `gateway: {id: gw}
devices:
  - {id: band-1, kind: wristband, driver: zigbee2mqtt, topic: z/band-1, notify: [famly]}
alarms:
  priorities: {gas.leak: 0}
  duty: [wang, wang]
  accept_within: 10ms
places:
  zones: {north: ""}
notify:
  language: fr
  console_url: "gateway:8080"
  targets:
    - {name: room, kind: wechat, url: "https://x/y"}
    - {name: room, kind: webhook, url: "ftp://x/y"}
    - {name: sms, kind: sms_http, url: "http://x/sms", body: "{{.To"}
    - {name: ding, kind: dingtalk, url: "http://x/d", to: ["1"], rate_per_minute: -1}
  routes:
    - {types: [gas.leak], targets: [nobody], priorities: [4], actions: [seen]}
    - {types: ["*"]}
`
	ps := parseErr(t, src)
	for key, line := range map[string]int{
		"devices[0].notify":                 3,
		"alarms.priorities.gas.leak":        0,
		"alarms.duty":                       6,
		"alarms.accept_within":              7,
		"places.zones":                      0,
		"notify.language":                   11,
		"notify.console_url":                12,
		"notify.targets[0].kind":            14,
		"notify.targets[1].name":            15,
		"notify.targets[1].url":             15,
		"notify.targets[2].to":              16,
		"notify.targets[2].body":            16,
		"notify.targets[3].to":              17,
		"notify.targets[3].rate_per_minute": 17,
		"notify.routes[0].targets":          19,
		"notify.routes[0].priorities":       19,
		"notify.routes[0].actions":          19,
		"notify.routes[1].targets":          20,
		"notify.routes[1].types":            20,
	} {
		p, ok := findProblem(ps, key)
		if !ok {
			t.Errorf("no problem for %s in %v", key, ps)
			continue
		}
		if line != 0 && p.Line != line {
			t.Errorf("%s at line %d, want %d", key, p.Line, line)
		}
	}
}

// A plugin section must be a mapping; config keeps it for the plugin,
// which decodes it strictly into its typed options.
func TestSection(t *testing.T) {
	ps := parseErr(t, "gateway: {id: gw}\ncameras:\n  - id: c1\n    url: a.mp4\n    detect:\n      motion: 3\n")
	if p, ok := findProblem(ps, "cameras[0].detect.motion"); !ok || p.Line != 6 || !strings.Contains(p.Msg, "mapping") {
		t.Errorf("problems %v, want cameras[0].detect.motion at line 6", ps)
	}
	c, err := config.Parse("t.yaml", []byte("gateway: {id: gw}\ncameras:\n  - id: c1\n    url: a.mp4\n    detect:\n      motion: {}\n      throw:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Cameras[0].Detect; d.Motion == nil || d.Throw != nil || d.Face != nil {
		t.Errorf("sections: motion %v (want present), throw %v, face %v (want absent)", d.Motion, d.Throw, d.Face)
	}
	var out struct {
		A int `yaml:"a"`
		B struct {
			C []string `yaml:"c"`
		} `yaml:"b"`
	}
	sec := config.SectionOf(map[string]any{"a": 1, "b": map[string]any{"c": []string{"x"}, "d": 2}})
	var ke *config.KeyError
	if err := sec.Decode("p", &out); !errors.As(err, &ke) || ke.Key != "p.b.d" || !strings.Contains(ke.Msg, "unknown key (c)") {
		t.Errorf("unknown nested key: %v", err)
	}
	sec = config.SectionOf(map[string]any{"a": "one"})
	if err := sec.Decode("p", &out); !errors.As(err, &ke) || ke.Key != "p.a" {
		t.Errorf("wrong type: %v", err)
	}
	sec = config.SectionOf(map[string]any{"a": 7, "b": map[string]any{"c": []string{"x", "y"}}})
	if err := sec.Decode("p", &out); err != nil || out.A != 7 || len(out.B.C) != 2 {
		t.Errorf("decode: %+v %v", out, err)
	}
	if got := sec.Keys(); !slices.Equal(got, []string{"a", "b", "b.c"}) {
		t.Errorf("keys %v", got)
	}
	// yaml alone would take 3 for a string and "yes" for true.
	var typed struct {
		S string `yaml:"s"`
		B bool   `yaml:"b"`
	}
	for key, v := range map[string]any{"s": 3, "b": "yes"} {
		err := config.SectionOf(map[string]any{key: v}).Decode("p", &typed)
		if !errors.As(err, &ke) || ke.Key != "p."+key || !strings.Contains(ke.Msg, "wrong type") {
			t.Errorf("%s: %v: %v", key, v, err)
		}
	}
}
