package genericjson_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/generic_json"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func TestRegisteredForEveryKind(t *testing.T) {
	for _, k := range config.DeviceKinds {
		_, probs := drivers.Default.New(config.Device{ID: "x", Kind: k, Driver: "generic_json", Topic: "t",
			Extra: map[string]any{"map": map[string]any{"type": "device.fault"}}})
		if len(probs) > 0 {
			t.Errorf("%s: %v", k, probs)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{nil, "map"},
		{map[string]any{"map": "perimeter.intrusion"}, "map"},
		{map[string]any{"map": map[string]any{}}, "map.type"},
		{map[string]any{"map": map[string]any{"type": "nope.nope"}}, "map.type"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "type_field": "t"}}, "map.type_field"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "severity": "severe"}}, "map.severity"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "when": map[string]any{"field": "a"}}}, "map.when.equals"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "when": map[string]any{"equals": true}}}, "map.when.field"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "when": map[string]any{"field": "a", "equals": []any{1}}}}, "map.when.equals"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "when": map[string]any{"field": "a", "equals": 1, "is": 2}}}, "map.when.is"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "data": map[string]any{"x": 3}}}, "map.data.x"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "data": "x"}}, "map.data"},
		{map[string]any{"map": map[string]any{"type": "gas.leak", "extra": 1}}, "map.extra"},
		{map[string]any{"map": map[string]any{"type": "gas.leak"}, "valve": "v"}, "valve"},
	} {
		_, probs := drivers.Default.New(config.Device{ID: "g", Kind: "perimeter", Driver: "generic_json", Topic: "t", Extra: c.extra})
		if len(probs) != 1 || probs[0].Key != c.key {
			t.Errorf("%v: %v, want key %s", c.extra, probs, c.key)
		}
	}
}
