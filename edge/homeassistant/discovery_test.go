package homeassistant

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// The keys Home Assistant documents for MQTT device discovery
// (https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload)
// and for each platform used, abbreviated where Warden abbreviates.
var (
	topKeys    = keys("dev", "o", "cmps", "availability_topic", "payload_available", "payload_not_available", "qos", "state_topic")
	devKeys    = keys("ids", "name", "mf", "mdl", "sw", "sa", "via_device")
	originKeys = keys("name", "sw", "url")
	common     = []string{"p", "unique_id", "name", "state_topic", "value_template", "device_class", "entity_category", "icon"}
	platforms  = map[string]struct {
		keys    map[string]bool
		classes map[string]bool
	}{
		"binary_sensor": {keys(append(common, "payload_on", "payload_off", "off_delay")...), keys("gas", "safety", "tamper", "connectivity")},
		"sensor":        {keys(append(common, "unit_of_measurement", "state_class")...), keys("battery")},
		"event":         {keys(append(common, "event_types")...), keys()},
		"valve":         {keys(append(common, "state_open", "state_closed", "reports_position")...), keys("gas")},
	}
	nodeRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

func keys(ks ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k] = true
	}
	return m
}

func TestConfigsUseDocumentedKeys(t *testing.T) {
	devs := []config.Device{
		{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt", Location: event.Location{Building: "3", Unit: "2", Room: "201"}},
		{ID: "valve-1", Kind: "gas_valve", Driver: "zigbee2mqtt"},
		{ID: "band 1", Kind: "wristband", Driver: "tuya"}, // a space: not allowed in a node id
		{ID: "fence-1", Kind: "perimeter", Driver: "zigbee2mqtt"},
		{ID: "gate-1", Kind: "barrier_gate", Driver: "hikvision"},
		{ID: "siren-1", Kind: "siren", Driver: "zigbee2mqtt"},
	}
	cams := []config.Camera{{ID: "cam-1", DisplayName: "北门", Detect: config.Detect{Face: config.SectionOf(map[string]any{})}}, {ID: "cam-2"}}
	tp := Topics{Gateway: "gw-east", Prefix: "homeassistant"}
	got := Configs(tp, devs, cams, Info{Version: "1.2.3"})
	if len(got) != 8 { // 5 devices (no siren), 2 cameras, the gateway
		t.Fatalf("%d configs, want 8: %v", len(got), got)
	}
	uids := map[string]bool{}
	for node, m := range got {
		if !nodeRe.MatchString(node) || m.Topic != "homeassistant/device/"+node+"/config" || !m.Retain {
			t.Errorf("node %q topic %q retain %v", node, m.Topic, m.Retain)
		}
		var p map[string]any
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		check := func(what string, obj map[string]any, allowed map[string]bool) {
			for k := range obj {
				if !allowed[k] {
					t.Errorf("%s: %s has undocumented key %q", node, what, k)
				}
			}
		}
		check("payload", p, topKeys)
		dev, _ := p["dev"].(map[string]any)
		check("dev", dev, devKeys)
		if ids, _ := dev["ids"].([]any); len(ids) != 1 || ids[0] != node {
			t.Errorf("%s: dev.ids %v", node, dev["ids"])
		}
		o, _ := p["o"].(map[string]any)
		check("o", o, originKeys)
		if o["name"] != "Warden" || o["sw"] != "1.2.3" {
			t.Errorf("%s: origin %v", node, o)
		}
		cmps, _ := p["cmps"].(map[string]any)
		if len(cmps) == 0 {
			t.Errorf("%s: no components", node)
		}
		for key, raw := range cmps {
			c := raw.(map[string]any)
			pl, ok := platforms[c["p"].(string)]
			if !ok {
				t.Errorf("%s.%s: platform %v", node, key, c["p"])
				continue
			}
			check(key, c, pl.keys)
			if dc, ok := c["device_class"].(string); ok && !pl.classes[dc] {
				t.Errorf("%s.%s: device_class %q not one of %s's", node, key, dc, c["p"])
			}
			uid, _ := c["unique_id"].(string)
			if uid == "" || uids[uid] {
				t.Errorf("%s.%s: unique_id %q missing or repeated", node, key, uid)
			}
			uids[uid] = true
			if c["state_topic"] == nil && p["state_topic"] == nil {
				t.Errorf("%s.%s: no state topic", node, key)
			}
			switch c["p"] {
			case "event":
				if types, _ := c["event_types"].([]any); len(types) == 0 {
					t.Errorf("%s.%s: event without event_types", node, key)
				}
			default:
				if c["value_template"] == nil && c["state_topic"] == nil {
					t.Errorf("%s.%s: reads the shared state JSON without a value_template", node, key)
				}
			}
		}
	}
	if _, ok := got["warden_gw-east_band_1"]; !ok {
		t.Error("a device id with a space is not announced as warden_gw-east_band_1")
	}
	if _, ok := got["warden_gw-east_siren-1"]; ok {
		t.Error("a siren was announced: Home Assistant gets nothing of it")
	}
	var cam map[string]any
	_ = json.Unmarshal(got["warden_gw-east_cam-1"].Payload, &cam)
	if name := cam["dev"].(map[string]any)["name"]; name != "北门" {
		t.Errorf("camera device name %v, want its display name", name)
	}
	if _, ok := cam["cmps"].(map[string]any)["detection"]; !ok {
		t.Error("a face camera has no detection event entity")
	}
	_ = json.Unmarshal(got["warden_gw-east_cam-2"].Payload, &cam)
	if _, ok := cam["cmps"].(map[string]any)["detection"]; ok {
		t.Error("a camera without face or throw detection has a detection event entity")
	}
}

type recorder struct{ msgs []Message }

func (r *recorder) PublishNoWait(topic string, _ byte, retain bool, payload []byte) {
	r.msgs = append(r.msgs, Message{Topic: topic, Payload: append([]byte(nil), payload...), Retain: retain})
}

// Events become states and event-entity messages; other events nothing.
func TestObserve(t *testing.T) {
	r := &recorder{}
	b := New(Options{Gateway: "gw", Prefix: "homeassistant", Publisher: r})
	ev := func(typ, src, data string) []byte {
		return []byte(`{"id":"x","type":"` + typ + `","source":{"kind":"k","id":"` + src + `"},"data":` + data + `}`)
	}
	b.Observe("gas.leak", ev("gas.leak", "gas-1", `{}`))
	b.Observe("gas.leak", ev("gas.leak", "gas-1", `{}`)) // unchanged: not published again
	b.Observe("alarm.opened", ev("alarm.opened", "gas-1", `{}`))
	b.Observe("gate.vehicle", ev("gate.vehicle", "gate-1", `{"plate":"浙A1"}`))
	b.Observe("wristband.fall", ev("wristband.fall", "band-1", `{}`))
	b.Observe("gas.cleared", []byte(`not json`))
	want := []Message{
		{Topic: "warden/gw/ha/gas-1", Payload: []byte(`{"gas":"ON"}`), Retain: true},
		{Topic: "warden/gw/ha/gate-1", Payload: []byte(`{"plate":"浙A1"}`), Retain: true},
		{Topic: "warden/gw/ha/band-1/event", Payload: []byte(`{"event_type":"fall"}`)},
	}
	if len(r.msgs) != len(want) {
		t.Fatalf("published %d: %v", len(r.msgs), r.msgs)
	}
	for i, m := range want {
		if r.msgs[i].Topic != m.Topic || string(r.msgs[i].Payload) != string(m.Payload) || r.msgs[i].Retain != m.Retain {
			t.Errorf("message %d = %s %s %v, want %s %s %v", i, r.msgs[i].Topic, r.msgs[i].Payload, r.msgs[i].Retain, m.Topic, m.Payload, m.Retain)
		}
	}
}

// Only Home Assistant's "online" birth message re-announces; anything
// else on its status topic (offline, garbage, a huge payload) is ignored.
func TestHAStatus(t *testing.T) {
	r := &lockedRecorder{}
	b := New(Options{Gateway: "gw", Prefix: "homeassistant", Publisher: r, ResendDelay: 10 * time.Millisecond,
		Devices: []config.Device{{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	configs := func() int { return r.count("homeassistant/device/") }
	deadline := time.Now().Add(5 * time.Second)
	for configs() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := configs(); n != 2 { // the gas detector and the gateway
		t.Fatalf("%d configs at start, want 2", n)
	}
	for _, p := range []string{"offline", "", "onlinex", strings.Repeat("x", 1<<20)} {
		b.HAStatus([]byte(p))
	}
	time.Sleep(100 * time.Millisecond)
	if n := configs(); n != 2 {
		t.Fatalf("%d configs after non-online status messages, want still 2", n)
	}
	b.HAStatus([]byte(" online\n"))
	for configs() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := configs(); n != 4 {
		t.Fatalf("%d configs after online, want 4", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type lockedRecorder struct {
	mu sync.Mutex
	recorder
}

func (r *lockedRecorder) PublishNoWait(topic string, qos byte, retain bool, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recorder.PublishNoWait(topic, qos, retain, payload)
}

func (r *lockedRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.HasPrefix(m.Topic, prefix) {
			n++
		}
	}
	return n
}
