package valve_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	"github.com/smartcommunity/warden/drivers/valve"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func newValve(t *testing.T, extra map[string]any) *valve.Valve {
	t.Helper()
	d, probs := drivers.Default.New(config.Device{ID: "v", Kind: "gas_valve", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/v", Extra: extra})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return d.(*valve.Valve)
}

func TestCommand(t *testing.T) {
	v := newValve(t, nil)
	for action, want := range map[string]string{"close": `{"state":"OFF"}`, "open": `{"state":"ON"}`} {
		topic, payload, err := v.Command(action)
		if err != nil || topic != "zigbee2mqtt/v/set" || string(payload) != want {
			t.Errorf("%s: %q %s %v", action, topic, payload, err)
		}
		// A command's payload read back as state means what it says.
		closed, ok := v.IsClosed(payload)
		if !ok || closed != (action == "close") {
			t.Errorf("IsClosed(%s) = %v %v", payload, closed, ok)
		}
	}
	if _, _, err := v.Command("explode"); err == nil {
		t.Error("unknown command accepted")
	}
	v = newValve(t, map[string]any{"closed_state": "CLOSE", "open_state": "OPEN"})
	if _, p, _ := v.Command("close"); string(p) != `{"state":"CLOSE"}` {
		t.Errorf("custom close %s", p)
	}
}

func TestIsClosed(t *testing.T) {
	v := newValve(t, nil)
	for payload, want := range map[string][2]bool{
		`{"state":"OFF"}`: {true, true}, `{"state":"ON"}`: {false, true},
		`{"battery":3}`: {false, false}, `{"state":"MAYBE"}`: {false, false}, `nope`: {false, false},
	} {
		closed, ok := v.IsClosed([]byte(payload))
		if closed != want[0] || ok != want[1] {
			t.Errorf("IsClosed(%s) = %v, %v; want %v", payload, closed, ok, want)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{map[string]any{"closed_state": 0}, "closed_state"},
		{map[string]any{"closed_state": ""}, "closed_state"},
		{map[string]any{"open_state": "off"}, "open_state"},
		{map[string]any{"valve": "x"}, "valve"},
	} {
		_, probs := drivers.Default.New(config.Device{ID: "v", Kind: "gas_valve", Driver: "zigbee2mqtt", Topic: "t", Extra: c.extra})
		if len(probs) != 1 || probs[0].Key != c.key {
			t.Errorf("%v: %v, want key %s", c.extra, probs, c.key)
		}
	}
}
