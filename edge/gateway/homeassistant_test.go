package gateway_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/testenv"
)

// haDevices: one device of every kind Home Assistant is told about, and a
// camera that cannot connect.
const haDevices = `  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-1", valve: valve-1}
  - {id: valve-1, kind: gas_valve, driver: zigbee2mqtt, topic: "zigbee2mqtt/valve-1"}
  - {id: band-1, kind: wristband, driver: zigbee2mqtt, topic: "zigbee2mqtt/band-1"}
  - {id: fence-1, kind: perimeter, driver: zigbee2mqtt, topic: "zigbee2mqtt/fence-1", location: {building: "3", zone: east}}
  - {id: gate-1, kind: barrier_gate, driver: generic, topic: "lpr/gate-1"}
cameras:
  - {id: cam-1, url: "rtsp://127.0.0.1:9/none", offline_grace: 1s, detect: {fps: 25, throw: {facade: {top_y: 10, bottom_y: 700, left_x: 10, right_x: 1200, floors: 10}}}}
`

// haRecorder keeps every message seen on the subscribed topics.
type haRecorder struct {
	mu   sync.Mutex
	msgs []paho.Message
}

func (r *haRecorder) last(topic string) (paho.Message, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m paho.Message
	n := 0
	for _, x := range r.msgs {
		if x.Topic() == topic {
			m, n = x, n+1
		}
	}
	return m, n
}

func (r *haRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.msgs {
		if strings.HasPrefix(x.Topic(), prefix) {
			n++
		}
	}
	return n
}

func haSubscribe(t *testing.T, url string) *haRecorder {
	t.Helper()
	c, err := mqttConnect(t, url, fmt.Sprintf("ha-test-%d", time.Now().UnixNano()), "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	r := &haRecorder{}
	tok := c.SubscribeMultiple(map[string]byte{"homeassistant/#": 1, "warden/gw-test/ha/#": 1}, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return r
}

// Home Assistant discovery through the running gateway: every device and
// camera is announced (retained), the states its entities read follow the
// devices, discovery is sent again when Home Assistant comes online, and a
// device removed from the config gets an empty config at the next start.
func TestHomeAssistantDiscovery(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testHomeAssistant(t, "") })
	t.Run("mosquitto", func(t *testing.T) { testHomeAssistant(t, bustest.Mosquitto(t).URL()) })
}

func testHomeAssistant(t *testing.T, broker string) {
	s := newSite(t, broker, haDevices)
	b, _ := os.ReadFile(s.cfgPath)
	os.WriteFile(s.cfgPath, []byte(strings.Replace(string(b), "mqtt:\n", "mqtt:\n  homeassistant: {enabled: true}\n", 1)), 0o600)
	s.start()
	r := haSubscribe(t, s.mqttURL)
	node := func(id string) string { return "homeassistant/device/warden_gw-test_" + id + "/config" }
	testenv.Until(t, 20*time.Second, "discovery of 5 devices, a camera and the gateway", func() bool {
		for _, id := range []string{"gas-1", "valve-1", "band-1", "fence-1", "gate-1", "cam-1"} {
			if _, n := r.last(node(id)); n == 0 {
				return false
			}
		}
		_, n := r.last("homeassistant/device/warden_gw-test/config")
		return n > 0
	})
	// A subscriber that comes later gets every config as a retained message.
	late := haSubscribe(t, s.mqttURL)
	testenv.Until(t, 20*time.Second, "every config retained for a late subscriber", func() bool {
		for _, id := range []string{"gas-1", "valve-1", "band-1", "fence-1", "gate-1", "cam-1"} {
			if m, _ := late.last(node(id)); m == nil || !m.Retained() {
				return false
			}
		}
		return true
	})
	type cmp map[string]any
	cfg := func(id string) (map[string]any, map[string]cmp) {
		t.Helper()
		m, _ := r.last(node(id))
		var p struct {
			Dev   map[string]any `json:"dev"`
			O     map[string]any `json:"o"`
			Cmps  map[string]cmp `json:"cmps"`
			Avail string         `json:"availability_topic"`
			State string         `json:"state_topic"`
		}
		if err := json.Unmarshal(m.Payload(), &p); err != nil {
			t.Fatalf("%s config: %v: %s", id, err, m.Payload())
		}
		if p.O["name"] != "Warden" || p.Avail != "warden/gw-test/status" || p.State != "warden/gw-test/ha/"+id {
			t.Errorf("%s: origin %v availability %q state %q", id, p.O, p.Avail, p.State)
		}
		return p.Dev, p.Cmps
	}
	want := map[string]map[string][2]string{ // id → component → platform, device_class
		"gas-1":   {"gas": {"binary_sensor", "gas"}},
		"valve-1": {"valve": {"valve", "gas"}},
		"band-1":  {"alert": {"event", ""}, "heart_rate": {"sensor", ""}, "battery": {"sensor", "battery"}},
		"fence-1": {"intrusion": {"binary_sensor", "safety"}, "tamper": {"binary_sensor", "tamper"}},
		"gate-1":  {"plate": {"sensor", ""}, "denied": {"event", ""}},
		"cam-1":   {"connectivity": {"binary_sensor", "connectivity"}, "detection": {"event", ""}},
	}
	for id, comps := range want {
		dev, cmps := cfg(id)
		if ids, _ := dev["ids"].([]any); len(ids) != 1 || ids[0] != "warden_gw-test_"+id || dev["via_device"] != "warden_gw-test" {
			t.Errorf("%s device %v", id, dev)
		}
		if len(cmps) != len(comps) {
			t.Errorf("%s components %v, want %v", id, cmps, comps)
		}
		for name, pd := range comps {
			c := cmps[name]
			dc, _ := c["device_class"].(string)
			if c["p"] != pd[0] || dc != pd[1] || c["unique_id"] != "warden_gw-test_"+id+"_"+name {
				t.Errorf("%s.%s = %v, want platform %s class %q", id, name, c, pd[0], pd[1])
			}
			if _, ok := c["command_topic"]; ok {
				t.Errorf("%s.%s has a command topic: Home Assistant must not command devices", id, name)
			}
		}
	}
	if dev, _ := cfg("fence-1"); dev["sa"] != "3-east" {
		t.Errorf("fence area %v, want 3-east", dev["sa"])
	}

	pub, err := mqttConnect(t, s.mqttURL, "devices", "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	send := func(topic, payload string) {
		t.Helper()
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	state := func(id string) map[string]any {
		m, _ := r.last("warden/gw-test/ha/" + id)
		var st map[string]any
		if m != nil {
			json.Unmarshal(m.Payload(), &st)
		}
		return st
	}
	send("zigbee2mqtt/gas-1", `{"gas":true}`)
	send("zigbee2mqtt/band-1", `{"heart_rate":72,"battery":88}`)
	send("zigbee2mqtt/band-1", `{"action":"sos"}`)
	send("lpr/gate-1", `{"plate":"浙A12345","direction":"in"}`)
	send("zigbee2mqtt/fence-1", `{"action":"vibration"}`)
	testenv.Eventually(t, 20*time.Second, "states of gas, band, gate, fence and camera", func() (bool, string) {
		g, b, gt, f, c := state("gas-1"), state("band-1"), state("gate-1"), state("fence-1"), state("cam-1")
		ok := g["gas"] == "ON" && b["heart_rate"] == 72.0 && b["battery"] == 88.0 && gt["plate"] == "浙A12345" &&
			f["intrusion"] == "ON" && c["online"] == "OFF"
		return ok, fmt.Sprint(g, b, gt, f, c)
	})
	if m, _ := r.last("warden/gw-test/ha/band-1/event"); m == nil || string(m.Payload()) != `{"event_type":"sos"}` || m.Retained() {
		t.Errorf("band SOS event entity message: %v", m)
	}
	send("zigbee2mqtt/gas-1", `{"gas":false}`)
	testenv.Until(t, 10*time.Second, "gas OFF", func() bool { return state("gas-1")["gas"] == "OFF" })

	// /readyz shows authenticated callers every event-log follower's lag.
	testenv.Eventually(t, 10*time.Second, "followers caught up on /readyz", func() (bool, string) {
		var body struct {
			Followers map[string]uint64 `json:"followers"`
		}
		if err := s.apiGet("/readyz", &body); err != nil {
			return false, err.Error()
		}
		for _, f := range []string{"mqtt-mirror", "alarms"} { // no rules configured: no rules follower
			if lag, ok := body.Followers[f]; !ok || lag != 0 {
				return false, fmt.Sprint(body.Followers)
			}
		}
		return true, ""
	})

	// Home Assistant restarts: everything is announced again.
	before := r.count("homeassistant/device/")
	send("homeassistant/status", "online")
	testenv.Until(t, 20*time.Second, "discovery sent again", func() bool { return r.count("homeassistant/device/") >= before+7 })

	// The broker keeps the configs across a restart; once the fence is
	// removed from the config, its retained config is deleted.
	retainedAfterRestart := func() map[string]bool {
		t.Helper()
		s.stop()
		s.start()
		r := haSubscribe(t, s.mqttURL)
		testenv.Until(t, 20*time.Second, "the gas detector's retained config", func() bool { _, n := r.last(node("gas-1")); return n > 0 })
		time.Sleep(500 * time.Millisecond) // the rest of the retained messages
		out := map[string]bool{}
		for _, id := range []string{"gas-1", "fence-1"} {
			m, _ := r.last(node(id))
			out[id] = m != nil && len(m.Payload()) > 0
		}
		m, _ := r.last("warden/gw-test/ha/gas-1")
		out["gas state"] = m != nil && m.Retained() && string(m.Payload()) == `{"gas":"OFF"}`
		return out
	}
	if got := retainedAfterRestart(); !got["gas-1"] || !got["fence-1"] || !got["gas state"] {
		t.Fatalf("retained after a restart: %v, want both configs and the gas state", got)
	}
	b, _ = os.ReadFile(s.cfgPath)
	os.WriteFile(s.cfgPath, []byte(strings.Replace(string(b), `  - {id: fence-1, kind: perimeter, driver: zigbee2mqtt, topic: "zigbee2mqtt/fence-1", location: {building: "3", zone: east}}`+"\n", "", 1)), 0o600)
	if got := retainedAfterRestart(); !got["gas-1"] || got["fence-1"] {
		t.Fatalf("retained configs after removing the fence: %v, want the gas detector's only", got)
	}
}
