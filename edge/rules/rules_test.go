package rules_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/zones"
)

var (
	gasSrc   = event.Source{Kind: "gas_detector", ID: "gas-3-2-201"}
	gasLoc   = event.Location{Building: "3", Unit: "2", Room: "201"}
	fenceSrc = event.Source{Kind: "perimeter", ID: "fence-n-1"}
	camSrc   = event.Source{Kind: "camera", ID: "gate-cam"}
)

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	yml := devicesYAML + `rules:
  - name: bad-topic
    when: {type: gas.leak}
    then:
      - {action: publish, topic: "a/{{.Type"}
  - name: bad-target
    when: {type: gas.smell}
    then:
      - {action: close_valve, devices: [valve-9]}
      - {action: siren, devices: [valve-1]}
  - name: bad-keys
    colour: red
    when: {type: "gas."}
    then:
      - {action: explode}
  - name: bad-times
    when: {type: "wristband.*", severity: panic}
    debounce: soon
    suppress: ["07:00-25:00"]
    then:
      - {action: raise_alarm, severity: high}
  - name: bad-correlate
    when: {type: face.unknown}
    correlate: {after: {type: perimeter.intrusion}, within: 60s, same: street}
    then:
      - {action: publish, topic: t, payload: "{{.Nope}}", qos: 5}
  - name: bad-topic
    when: {type: gas.leak}
  - name: bad-siren
    when: {type: gas.leak, location: {floor: 3}}
    then:
      - {action: siren, state: loud}
      - {action: open_gate, same: street}
  - name: bad-mixed
    when: {type: gas.leak, location: {building: 3}}
    debounce: 0s
    suppress: {days: [sat], from: "10:00", until: "12:00"}
    then:
      - {action: publish, topic: t, devices: [valve-1], qos: two}
  - name: bad-shape
    when: {type: gas.leak}
    then: {action: raise_alarm}
`
	_, err := config.Parse("test.yaml", []byte(yml), rules.Check, drivers.Default.Validate)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a config error, got %v", err)
	}
	lines := strings.Split(yml, "\n")
	lineOf := func(sub string, nth int) int {
		for i, l := range lines {
			if strings.Contains(l, sub) {
				if nth == 0 {
					return i + 1
				}
				nth--
			}
		}
		t.Fatalf("%q not in the yaml", sub)
		return 0
	}
	want := map[string]int{
		"rules[0].then[0].topic":       lineOf(`topic: "a/{{.Type"`, 0),
		"rules[1].when.type":           lineOf("gas.smell", 0),
		"rules[1].then[0].devices[0]":  lineOf("valve-9", 0),
		"rules[1].then[1].devices[0]":  lineOf("devices: [valve-1]", 0),
		"rules[2].colour":              lineOf("colour: red", 0),
		"rules[2].then[0].action":      lineOf("explode", 0),
		"rules[3].when.severity":       lineOf("severity: panic", 0),
		"rules[3].debounce":            lineOf("debounce: soon", 0),
		"rules[3].suppress[0]":         lineOf("25:00", 0),
		"rules[3].then[0].severity":    lineOf("severity: high", 0),
		"rules[4].correlate.same":      lineOf("same: street", 0),
		"rules[4].then[0].payload":     lineOf("{{.Nope}}", 0),
		"rules[4].then[0].qos":         lineOf("{{.Nope}}", 0),
		"rules[5].name":                lineOf("name: bad-topic", 1),
		"rules[5].then":                lineOf("name: bad-topic", 1),
		"rules[6].when.location.floor": lineOf("floor: 3", 0),
		"rules[6].then[0].state":       lineOf("state: loud", 0),
		"rules[6].then[1].same":        lineOf("same: street", 1),
		"rules[7].suppress.until":      lineOf("until:", 0),
		"rules[7].debounce":            lineOf("debounce: 0s", 0),
		"rules[7].then[0].devices":     lineOf("qos: two", 0),
		"rules[7].then[0].qos":         lineOf("qos: two", 0),
		"rules[8].then":                lineOf("then: {action: raise_alarm}", 0),
	}
	got := map[string]config.Problem{}
	for _, p := range ce.Problems {
		got[p.Key] = p
	}
	for k := range got {
		if strings.HasPrefix(k, "rules[7].when") {
			t.Errorf("building: 3 is a building name, not a problem: %v", got[k])
		}
	}
	for k, line := range want {
		p, ok := got[k]
		if !ok {
			t.Errorf("no problem for %s", k)
			continue
		}
		// rules[5].then is missing, so it points at its rule.
		if p.Line != line && k != "rules[5].then" {
			t.Errorf("%s: line %d, want %d (%s)", k, p.Line, line, p.Msg)
		}
	}
	if t.Failed() {
		t.Logf("all problems:\n%v", err)
	}
	msg := err.Error()
	for _, s := range []string{`"gas.smell" is not an event type`, `no device has id "valve-9"`, `is a gas_valve, not a siren`,
		`rules[2].colour: unknown key (correlate, debounce, name, suppress, then, when)`,
		`unknown key "until" (days, from, to)`, `devices: is not a key of publish (topic, payload, qos, retain)`,
		`qos: wrong type: "two", want a number`, `then: wrong type: want a list`, `duplicate rule name "bad-topic"`, "can't evaluate field Nope"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not say %q:\n%s", s, msg)
		}
	}
}

// The rule's sample.yaml shows every key of its typed form, passes every
// check, and configs/warden.yaml shows each of its keys: the drift guard.
func TestSampleShowsEveryKey(t *testing.T) {
	sec, err := config.ParseSection(rules.Sample)
	if err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	have := sec.Keys()
	for _, k := range config.StructKeys(rules.SpecType) {
		if !slices.Contains(have, k) {
			t.Errorf("sample.yaml does not show %s", k)
		}
	}
	if rs, ps := rules.Parse([]*config.Section{sec}, parse(t, "").Devices); len(ps) > 0 || len(rs) != 1 {
		t.Errorf("sample.yaml: %d rules, problems %v", len(rs), ps)
	}
	reference := testenv.ReferenceKeys(t)
	for _, k := range have {
		if !reference["rules[]."+k] {
			t.Errorf("configs/warden.yaml shows no rules[].%s (see edge/rules/sample.yaml)", k)
		}
	}
}

// TestReferenceConfig: the examples in configs/warden.yaml pass every check.
func TestReferenceConfig(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "warden.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s: %v", path, err)
	}
	c, err := config.Load(path, drivers.Default.Validate, rules.Check, zones.Check)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) == 0 || len(c.Alarms.Zones) == 0 {
		t.Fatal("the reference config should show example rules and zones")
	}
}

func TestActions(t *testing.T) {
	c := parse(t, `rules:
  - name: gas-all
    when: {type: "gas.", severity: critical, location: {building: "3"}}
    then:
      - action: publish
        topic: "site/{{.Site}}/{{.Type}}/{{.Location.Building}}"
        payload: '{"id":"{{.ID}}","rule":"{{.Rule}}","lel":{{json .Data.lel_percent}},"src":"{{upper .Source.ID}}"}'
      - {action: publish, topic: "raw/{{.Source.ID}}", qos: 0}
      - {action: close_valve, devices: [valve-1]}
      - {action: siren, state: "on", same: building}
      - {action: raise_alarm, severity: critical, key: "gas/{{.Location.Building}}", assign: wang}
  - name: gate-on-vehicle
    when: {type: gate.vehicle, source: {kind: barrier_gate, id: "gate-*"}}
    then:
      - {action: open_gate, same: zone}
      - {action: siren, state: off, devices: [siren-5]}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	lel := 31.5
	gas := *event.NewGasLeak(event.Origin{Gateway: "gw-test", Site: "xjl", Source: gasSrc, Location: gasLoc, Time: time.Now()}, &lel, event.Critical)
	en.Process(context.Background(), gas)

	var body map[string]any
	if err := json.Unmarshal([]byte(e.expect("site/xjl/gas.leak/3")), &body); err != nil {
		t.Fatalf("templated payload is not JSON: %v", err)
	}
	if body["id"] != gas.ID || body["rule"] != "gas-all" || body["lel"] != 31.5 || body["src"] != "GAS-3-2-201" {
		t.Errorf("payload = %v", body)
	}
	var raw event.Event
	if err := json.Unmarshal([]byte(e.expect("raw/gas-3-2-201")), &raw); err != nil || raw.ID != gas.ID {
		t.Errorf("default payload is not the event: %v %+v", err, raw)
	}
	if p := e.expect("z/valve-1/set"); !strings.Contains(p, `"state":"OFF"`) {
		t.Errorf("valve command %s", p)
	}
	sirens := map[string]string{}
	for _, m := range e.drain() {
		sirens[m.topic] = m.payload
	}
	for _, s := range []string{"z/siren-3a/set", "z/siren-3b/set"} {
		if p := sirens[s]; !strings.Contains(p, `"emergency"`) {
			t.Errorf("%s: siren command %q", s, p)
		}
	}
	if _, ok := sirens["z/siren-5/set"]; ok || len(sirens) != 2 {
		t.Errorf("commands after the valve: %v (siren-5 is in another building)", sirens)
	}
	open, err := e.alarms.List(alarm.Open, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Key != "gas/3" || open[0].Severity != event.Critical || open[0].FirstEventID != gas.ID ||
		open[0].Assigned == nil || open[0].Assigned.To != "wang" || open[0].Assigned.By != "rule" {
		t.Errorf("alarms = %+v", open)
	}

	// A vehicle at gate-1 (zone north): the gate in its zone opens.
	veh := mk(event.GateVehicle, event.Source{Kind: "barrier_gate", ID: "gate-1"}, event.Location{Zone: "north"}, time.Now(),
		map[string]any{"plate": "京A12345", "direction": "in", "decision": "allowed"})
	en.Process(context.Background(), veh)
	if p := e.expect("lpr/gate-1/set"); p != `{"command":"open"}` {
		t.Errorf("gate command %s", p)
	}
	if p := e.expect("z/siren-5/set"); !strings.Contains(p, `"stop"`) {
		t.Errorf("siren off %s", p)
	}
	if got := metric(t, e.reg, "warden_rule_fired_total", map[string]string{"rule": "gas-all"}); got != 1 {
		t.Errorf("fired{gas-all} = %v", got)
	}
	if got := metric(t, e.reg, "warden_rule_action_errors_total", nil); got != 0 {
		t.Errorf("action errors = %v", got)
	}

	// A gas leak in building 5 matches nothing (location).
	en.Process(context.Background(), mk(event.GasLeak, gasSrc, event.Location{Building: "5"}, time.Now(), nil))
	if ms := e.drain(); len(ms) > 0 {
		t.Errorf("building 5 leak triggered %v", ms)
	}
}

func TestActionErrorsAreCounted(t *testing.T) {
	c := parse(t, `rules:
  - name: broken
    when: {type: gas.leak}
    then:
      - {action: publish, topic: "x/{{.Data.where}}"}
      - {action: siren, same: room}
      - {action: publish, topic: "ok/{{.Type}}", payload: "fine"}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	// data.where renders "<no value>"... a topic with a wildcard fails.
	en.Process(context.Background(), mk(event.GasLeak, gasSrc, gasLoc, time.Now(), map[string]any{"where": "a/#"}))
	if p := e.expect("ok/gas.leak"); p != "fine" {
		t.Errorf("later action after failures: %q", p)
	}
	for _, a := range []string{"publish", "siren"} {
		if got := metric(t, e.reg, "warden_rule_action_errors_total", map[string]string{"rule": "broken", "action": a}); got != 1 {
			t.Errorf("action errors{%s} = %v, want 1", a, got)
		}
	}
}

func TestDebounce(t *testing.T) {
	c := parse(t, `rules:
  - name: sos
    when: {type: wristband.sos}
    debounce: 30s
    then:
      - {action: publish, topic: "sos/{{.Source.ID}}", payload: "{{.ID}}"}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	a := event.Source{Kind: "wristband", ID: "band-a"}
	b := event.Source{Kind: "wristband", ID: "band-b"}
	var fired []string
	for _, s := range []struct {
		src  event.Source
		at   time.Duration
		fire bool
	}{{a, 0, true}, {a, 10 * time.Second, false}, {b, 12 * time.Second, true}, {a, 29 * time.Second, false}, {a, 31 * time.Second, true}, {b, 40 * time.Second, false}} {
		ev := mk(event.WristbandSOS, s.src, event.Location{}, origin0.Add(s.at), nil)
		en.Process(context.Background(), ev)
		if s.fire {
			fired = append(fired, ev.ID)
		}
	}
	var got []string
	for _, m := range e.drain() {
		got = append(got, m.payload)
	}
	if !slices.Equal(got, fired) {
		t.Errorf("fired %v, want %v", got, fired)
	}
	if n := metric(t, e.reg, "warden_rule_suppressed_total", map[string]string{"rule": "sos", "why": "debounce"}); n != 3 {
		t.Errorf("suppressed{debounce} = %v, want 3", n)
	}
}

func TestSuppressWindowsAndStale(t *testing.T) {
	c := parse(t, `rules:
  - name: face
    when: {type: face.unknown}
    suppress: ["07:00-08:30", "sat,sun 10:00-12:00", {days: [fri], from: "22:00", to: "06:00"}]
    then:
      - {action: publish, topic: "face", payload: "{{.Time.Format \"Mon 15:04\"}}"}
`)
	e := newEnv(t, c)
	cst := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, cst) // a Friday
	en := e.engine(c, func(o *rules.Options) { o.Location = cst; o.Now = func() time.Time { return now }; o.MaxAge = 0 })
	// Event times are UTC as stored; windows are in the box's zone (CST).
	cases := []struct {
		at   time.Time
		fire bool
	}{
		{time.Date(2026, 11, 27, 6, 59, 0, 0, cst), true},
		{time.Date(2026, 11, 27, 7, 0, 0, 0, cst), false},
		{time.Date(2026, 11, 27, 8, 29, 0, 0, cst), false},
		{time.Date(2026, 11, 27, 8, 30, 0, 0, cst), true},
		{time.Date(2026, 11, 28, 11, 0, 0, 0, cst), false}, // Saturday
		{time.Date(2026, 11, 30, 11, 0, 0, 0, cst), true},  // Monday
		{time.Date(2026, 11, 27, 23, 0, 0, 0, cst), false}, // Friday night
		{time.Date(2026, 11, 28, 5, 59, 0, 0, cst), false}, // still Friday's window
		{time.Date(2026, 11, 29, 5, 0, 0, 0, cst), true},   // Sunday morning: Saturday has no night window
	}
	var want []string
	for _, k := range cases {
		now = k.at.Add(time.Second)
		ev := mk(event.FaceUnknown, camSrc, event.Location{}, k.at.UTC(), nil)
		en.Process(context.Background(), ev)
		if k.fire {
			want = append(want, ev.Time.UTC().Format("Mon 15:04"))
		}
	}
	var got []string
	for _, m := range e.drain() {
		got = append(got, m.payload)
	}
	if !slices.Equal(got, want) {
		t.Errorf("fired at %v, want %v", got, want)
	}
	if n := metric(t, e.reg, "warden_rule_suppressed_total", map[string]string{"rule": "face", "why": "window"}); n != 5 {
		t.Errorf("suppressed{window} = %v, want 5", n)
	}
	// An event 11 minutes old when processed is stale (MaxAge 10m default).
	now = time.Date(2026, 11, 30, 12, 0, 0, 0, cst)
	en.Process(context.Background(), mk(event.FaceUnknown, camSrc, event.Location{}, now.Add(-11*time.Minute), nil))
	if ms := e.drain(); len(ms) > 0 {
		t.Errorf("stale event fired: %v", ms)
	}
	if n := metric(t, e.reg, "warden_rule_suppressed_total", map[string]string{"rule": "face", "why": "stale"}); n != 1 {
		t.Errorf("suppressed{stale} = %v, want 1", n)
	}
}

func TestCorrelation(t *testing.T) {
	c := parse(t, `rules:
  - name: intrusion-face
    when: {type: face.unknown}
    correlate: {after: {type: perimeter.intrusion}, within: 60s, same: zone}
    then:
      - {action: raise_alarm, severity: critical, key: "intrusion+face/{{.Zone}}"}
      - {action: publish, topic: "esc/{{.Zone}}", payload: "{{.Related.ID}} {{.ID}}"}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	ctx := context.Background()
	face := func(zone string, at time.Duration) event.Event {
		return mk(event.FaceUnknown, camSrc, event.Location{Zone: zone}, origin0.Add(at), map[string]any{"score": 0.2})
	}
	intr := mk(event.PerimeterIntr, fenceSrc, event.Location{}, origin0, map[string]any{"zone": "north", "input": "vibration"})

	// A face before any intrusion, then the intrusion, a face in another
	// zone, and a face in the same zone 40 s later.
	en.Process(ctx, face("north", -5*time.Minute))
	en.Process(ctx, intr)
	en.Process(ctx, face("south", 20*time.Second))
	hit := face("north", 40*time.Second)
	en.Process(ctx, hit)
	if p := e.expect("esc/north"); p != intr.ID+" "+hit.ID {
		t.Errorf("payload %q", p)
	}
	evs := e.raised.events()
	if len(evs) != 1 {
		t.Fatalf("raised %d alarms, want 1", len(evs))
	}
	ids, _ := evs[0].Data["event_ids"].([]string)
	if !slices.Equal(ids, []string{intr.ID, hit.ID}) {
		t.Errorf("data.event_ids = %v", evs[0].Data["event_ids"])
	}
	if hit.Data["event_ids"] != nil {
		t.Error("the caller's event data was changed")
	}
	open, _ := e.alarms.List(alarm.Open, "", 10)
	if len(open) != 1 || open[0].Severity != event.Critical || open[0].Key != "intrusion+face/north" {
		t.Errorf("alarms %+v", open)
	}
	// Too late: 61 s after the last intrusion.
	en.Process(ctx, face("north", 101*time.Second))
	if ms := e.drain(); len(ms) > 0 {
		t.Errorf("a face 101 s after the intrusion escalated: %v", ms)
	}
	if n := len(e.raised.events()); n != 1 {
		t.Errorf("raised %d, want 1", n)
	}
}

// TestLoopSafety: alarm.* and system.* reach only rules that name them.
func TestLoopSafety(t *testing.T) {
	c := parse(t, `rules:
  - name: everything
    when: {severity: info}
    then:
      - {action: raise_alarm}
  - name: star
    when: {type: "*"}
    then:
      - {action: publish, topic: "star/{{.Type}}", payload: x}
  - name: alarms
    when: {type: "alarm.*"}
    then:
      - {action: publish, topic: "alarms/{{.Type}}", payload: x}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	ctx := context.Background()
	ev := mk(event.GasCleared, gasSrc, gasLoc, time.Now(), nil)
	en.Process(ctx, ev)
	// The alarm the first rule raised is an alarm.opened in real life; feed
	// it back as the gateway would after committing it.
	al := mk(event.AlarmOpened, event.Source{Kind: "gateway", ID: "gw-test"}, gasLoc, time.Now(),
		map[string]any{"alarm_id": "x", "state": "open", "alarm_type": event.GasCleared})
	en.Process(ctx, al)
	en.Process(ctx, mk(event.SystemStorage, event.Source{Kind: "gateway", ID: "gw-test"}, event.Location{}, time.Now(), nil))
	got := map[string]bool{}
	for _, m := range e.drain() {
		got[m.topic] = true
	}
	if !got["star/gas.cleared"] || !got["alarms/alarm.opened"] || got["star/alarm.opened"] || got["star/system.storage"] || len(got) != 2 {
		t.Errorf("published %v", got)
	}
	if n := len(e.raised.events()); n != 1 {
		t.Errorf("raise_alarm ran %d times, want 1 (not for its own alarm)", n)
	}
}

// TestRunFollowsStore: events committed before the first start are
// history (not acted on); later ones are processed in order and the cursor
// is saved.
func TestRunFollowsStore(t *testing.T) {
	c := parse(t, `rules:
  - name: sos
    when: {type: wristband.sos}
    then:
      - {action: publish, topic: "sos", payload: "{{.Seq}}"}
`)
	e := newEnv(t, c)
	en := e.engine(c, func(o *rules.Options) { o.MaxAge = 0 })
	band := event.Source{Kind: "wristband", ID: "b"}
	old := mk(event.WristbandSOS, band, event.Location{}, time.Now(), nil)
	if err := e.store.Append(context.Background(), &old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- en.Run(ctx, e.store) }()
	// Run saves its starting point (the end of the log) at once.
	var evs []*event.Event
	for i := 0; i < 3; i++ {
		ev := mk(event.WristbandSOS, band, event.Location{}, time.Now(), nil)
		evs = append(evs, &ev)
	}
	deadline := time.Now().Add(wait)
	for cur, _ := e.store.Cursor(rules.CursorName); cur != old.Seq; cur, _ = e.store.Cursor(rules.CursorName) {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not save its starting cursor %d (have %d)", old.Seq, cur)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.store.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if p := e.expect("sos"); p != itoa(ev.Seq) {
			t.Errorf("processed seq %s, want %d", p, ev.Seq)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cur, _ := e.store.Cursor(rules.CursorName); cur != evs[2].Seq {
		t.Errorf("cursor %d, want %d", cur, evs[2].Seq)
	}
	for _, m := range e.drain() {
		if m.payload == itoa(old.Seq) {
			t.Error("history was acted on")
		}
	}
}

func itoa(u uint64) string { b, _ := json.Marshal(u); return string(b) }

// No rule may command an actuator by publishing to it: a literal topic is
// a config error with its line, a templated one that renders to an
// actuator's topic is refused when it fires. The valve's close still
// comes from close_valve.
func TestRulesCannotPublishCommands(t *testing.T) {
	yml := devicesYAML + `rules:
  - name: reopen
    when: {type: gas.cleared}
    then:
      - {action: publish, topic: z/valve-1/set, payload: '{"state":"ON"}'}
      - {action: publish, topic: z/valve-1/set/state, payload: "ON"}
      - {action: publish, topic: zigbee2mqtt/bridge/request/permit_join, payload: '{"value":true}'}
      - {action: publish, topic: warden/gw-test/events/gas.cleared}
`
	_, err := config.Parse("test.yaml", []byte(yml), rules.Check, drivers.Default.Validate)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a config error, got %v", err)
	}
	for i := range 4 {
		key := fmt.Sprintf("rules[0].then[%d].topic", i)
		found := false
		for _, p := range ce.Problems {
			found = found || (p.Key == key && p.Line == 13+i && strings.Contains(p.Msg, "commands an actuator"))
		}
		if !found {
			t.Errorf("no problem for %s at line %d in %v", key, 13+i, ce.Problems)
		}
	}

	c := parse(t, `rules:
  - name: templated
    when: {type: gas.cleared}
    then:
      - {action: publish, topic: "z/{{.Data.target}}/set", payload: '{"state":"ON"}'}
      - {action: publish, topic: "ok/{{.Type}}", payload: "fine"}
`)
	e := newEnv(t, c)
	en := e.engine(c, nil)
	en.Process(context.Background(), mk(event.GasCleared, gasSrc, gasLoc, time.Now(), map[string]any{"target": "valve-1"}))
	if p := e.expect("ok/gas.cleared"); p != "fine" {
		t.Errorf("later action: %q", p)
	}
	if got := metric(t, e.reg, "warden_rule_action_errors_total", map[string]string{"rule": "templated", "action": "publish"}); got != 1 {
		t.Errorf("publish errors = %v, want 1 (the valve topic refused)", got)
	}
}
