package drivers_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
)

func TestCommandSpace(t *testing.T) {
	space := drivers.Default.CommandSpace([]config.Device{
		{ID: "valve-1", Kind: "gas_valve", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/valve-1"},
		{ID: "gate-1", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-1", Extra: map[string]any{"command_topic": "barrier/east/open"}},
		{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-1"},
	})
	cases := []struct {
		topic             string
		command, actuator bool
	}{
		{"zigbee2mqtt/valve-1/set", true, true},
		{"zigbee2mqtt/valve-1/set/state", true, true}, // zigbee2mqtt obeys per-attribute sets
		{"zigbee2mqtt/other/set/state", true, false},  // not ours, but no device account may write it
		{"zigbee2mqtt/bridge/request/permit_join", true, true},
		{"z2m/site-a/bridge/request/device/remove", true, true},
		{"barrier/east/open", true, true}, // a gate's own command topic
		{"barrier/east/open/x", true, true},
		{"warden/gw/events/gas.leak", true, true},
		{"tuya/1/command", true, false},
		{"a/cmd", true, false},
		{"community/9/gas/set", true, false}, // a rule may publish there
		{"zigbee2mqtt/gas-1", false, false},
		{"zigbee2mqtt/valve-1", false, false}, // the valve's state topic
		{"set", false, false},
		{"settings/x", false, false},
		{"zigbee2mqtt/bridge/state", false, false},
	}
	for _, c := range cases {
		if got := space.Contains(c.topic); got != c.command {
			t.Errorf("Contains(%q) = %v, want %v", c.topic, got, c.command)
		}
		if got := space.Actuator(c.topic); got != c.actuator {
			t.Errorf("Actuator(%q) = %v, want %v", c.topic, got, c.actuator)
		}
	}
	if f := space.Filters(); len(f) != 4 {
		t.Errorf("filters %v, want the valve's and the gate's topics with their sub-topics", f)
	}
}
