// Package homeassistant publishes Home Assistant MQTT discovery for the
// gateway's devices and cameras (one device-based config per device, with
// its components), and the states those components read, on Warden's own
// topics. Everything is read-only: commands stay the gateway's.
package homeassistant

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/smartcommunity/warden/edge/config"
)

// Message is one MQTT publish.
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// Topics of one gateway.
type Topics struct {
	Gateway string
	Prefix  string
}

// Availability is the gateway's status topic ("online"/"offline", retained,
// also its last will).
func (t Topics) Availability() string { return "warden/" + t.Gateway + "/status" }

// State is a device's retained state JSON.
func (t Topics) State(id string) string { return "warden/" + t.Gateway + "/ha/" + id }

// Event is where a device's event entities get {"event_type":…}.
func (t Topics) Event(id string) string { return t.State(id) + "/event" }

// Config is a node's discovery topic.
func (t Topics) Config(node string) string { return t.Prefix + "/device/" + node + "/config" }

// HAStatus is Home Assistant's birth/will topic.
func (t Topics) HAStatus() string { return t.Prefix + "/status" }

// offDelay (seconds) turns a momentary binary sensor off again.
const offDelay = 60

var notID = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// Node is the discovery node id (and device identifier) of a device.
func (t Topics) Node(id string) string {
	return notID.ReplaceAllString("warden_"+t.Gateway+"_"+id, "_")
}

// Event types of event entities, by Warden event type.
var eventTypes = map[string]string{
	"wristband.sos": "sos", "wristband.fall": "fall",
	"gate.denied":    "denied",
	"throw.detected": "throw", "face.recognized": "face_recognized", "face.unknown": "face_unknown",
	"face.watchlist": "face_watchlist",
}

// Info identifies the software in every config ("o").
type Info struct {
	Version string
}

// Configs are the discovery messages of every supported device and camera,
// and of the gateway itself, keyed by node id.
func Configs(t Topics, devices []config.Device, cameras []config.Camera, info Info) map[string]Message {
	out := map[string]Message{}
	gwNode := notID.ReplaceAllString("warden_"+t.Gateway, "_")
	add := func(node string, dev map[string]any, cmps map[string]map[string]any, state string) {
		for key, c := range cmps {
			c["unique_id"] = node + "_" + key
		}
		payload := map[string]any{
			"dev":  dev,
			"o":    map[string]any{"name": "Warden", "sw": info.Version, "url": "https://github.com/smartcommunity/warden"},
			"cmps": cmps,
			"qos":  1,
		}
		if state != "" {
			// Entities follow the gateway: unavailable while it is offline.
			payload["state_topic"] = state
			payload["availability_topic"] = t.Availability()
			payload["payload_available"] = "online"
			payload["payload_not_available"] = "offline"
		}
		b, _ := json.Marshal(payload)
		out[node] = Message{Topic: t.Config(node), Payload: b, Retain: true}
	}
	add(gwNode, map[string]any{"ids": []string{gwNode}, "name": "Warden " + t.Gateway, "mf": "Warden", "mdl": "edge gateway", "sw": info.Version},
		map[string]map[string]any{"status": {"p": "binary_sensor", "name": "Status", "device_class": "connectivity",
			"state_topic": t.Availability(), "payload_on": "online", "payload_off": "offline", "entity_category": "diagnostic"}}, "")
	device := func(id, name, model string, area string) map[string]any {
		d := map[string]any{"ids": []string{t.Node(id)}, "name": name, "mf": "Warden", "mdl": model, "via_device": gwNode}
		if area != "" {
			d["sa"] = area
		}
		return d
	}
	for _, d := range devices {
		cmps := deviceComponents(t, d)
		if cmps == nil {
			continue
		}
		add(t.Node(d.ID), device(d.ID, d.ID, d.Kind+" ("+d.Driver+")", area(d.Location.Building, d.Location.Unit, d.Location.Room, d.Location.Zone)),
			cmps, t.State(d.ID))
	}
	for _, c := range cameras {
		name := c.DisplayName
		if name == "" {
			name = c.ID
		}
		var types []string
		if c.Detect.Throw != nil {
			types = append(types, "throw")
		}
		if c.Detect.Face != nil {
			types = append(types, "face_recognized", "face_unknown", "face_watchlist")
		}
		cmps := map[string]map[string]any{
			"connectivity": {"p": "binary_sensor", "name": "Online", "device_class": "connectivity", "entity_category": "diagnostic",
				"value_template": "{{ value_json.online }}", "payload_on": "ON", "payload_off": "OFF"},
		}
		if len(types) > 0 {
			cmps["detection"] = map[string]any{"p": "event", "name": "Detection", "state_topic": t.Event(c.ID), "event_types": types}
		}
		add(t.Node(c.ID), device(c.ID, name, "camera", area(c.Location.Building, c.Location.Unit, c.Location.Room, c.Location.Zone)), cmps, t.State(c.ID))
	}
	return out
}

// deviceComponents are a device's entities; nil for kinds Home Assistant
// gets nothing of (sirens).
func deviceComponents(t Topics, d config.Device) map[string]map[string]any {
	bin := func(name, class, field string) map[string]any {
		return map[string]any{"p": "binary_sensor", "name": name, "device_class": class,
			"value_template": "{{ value_json." + field + " }}", "payload_on": "ON", "payload_off": "OFF"}
	}
	switch d.Kind {
	case "gas_detector":
		return map[string]map[string]any{"gas": bin("Gas", "gas", "gas")}
	case "gas_valve":
		// State only: no command_topic, so Home Assistant cannot open it.
		return map[string]map[string]any{"valve": {"p": "valve", "name": "Valve", "device_class": "gas",
			"value_template": "{{ value_json.valve }}", "state_open": "open", "state_closed": "closed",
			"reports_position": false}}
	case "wristband":
		return map[string]map[string]any{
			"alert": {"p": "event", "name": "Alert", "state_topic": t.Event(d.ID), "event_types": []string{"sos", "fall"}},
			"heart_rate": {"p": "sensor", "name": "Heart rate", "unit_of_measurement": "bpm", "state_class": "measurement",
				"icon": "mdi:heart-pulse", "value_template": "{{ value_json.heart_rate }}"},
			"battery": {"p": "sensor", "name": "Battery", "device_class": "battery", "unit_of_measurement": "%",
				"state_class": "measurement", "entity_category": "diagnostic", "value_template": "{{ value_json.battery }}"},
		}
	case "perimeter":
		// Intrusions and tampering are moments: the sensors fall back to
		// off a minute after the last one.
		in, tam := bin("Intrusion", "safety", "intrusion"), bin("Tamper", "tamper", "tamper")
		in["off_delay"], tam["off_delay"] = offDelay, offDelay
		return map[string]map[string]any{"intrusion": in, "tamper": tam}
	case "barrier_gate":
		return map[string]map[string]any{
			"plate":  {"p": "sensor", "name": "Last plate", "icon": "mdi:car", "value_template": "{{ value_json.plate }}"},
			"denied": {"p": "event", "name": "Denied", "state_topic": t.Event(d.ID), "event_types": []string{"denied"}},
		}
	}
	return nil
}

func area(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "-")
}
