package gas_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/gas"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func TestRealPayloadsCovered(t *testing.T) {
	kittest.RequireRealCovered(t, "testdata/*.jsonl", "gas")
}

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func TestConfigProblems(t *testing.T) {
	cases := []struct {
		driver string
		extra  map[string]any
		keys   []string
	}{
		{"zigbee2mqtt", map[string]any{"valve": "v1", "siren": []any{"s1", "s2"}, "warn_lel": 8, "critical_lel": 20.5}, nil},
		{"zigbee2mqtt", map[string]any{"valves": "v1"}, []string{"valves"}},
		{"zigbee2mqtt", map[string]any{"valve": 3}, []string{"valve"}},
		{"zigbee2mqtt", map[string]any{"valve": []any{"v1", 2}}, []string{"valve[1]"}},
		{"zigbee2mqtt", map[string]any{"warn_lel": "ten"}, []string{"warn_lel"}},
		{"zigbee2mqtt", map[string]any{"warn_lel": 30, "critical_lel": 20}, []string{"critical_lel"}},
		{"zigbee2mqtt", map[string]any{"critical_lel": 150}, []string{"critical_lel"}},
		{"zigbee2mqtt", map[string]any{"density_unit": "ppm"}, []string{"density_unit"}},
		{"zigbee2mqtt", map[string]any{"did": "x"}, []string{"did"}},
		{"gateway3", map[string]any{"did": "lumi.1"}, nil},
		{"gateway3", map[string]any{"did": 1}, []string{"did"}},
		{"generic", map[string]any{"gas_field": "a.b", "lel_field": "c"}, nil},
		{"generic", map[string]any{"gas_field": true}, []string{"gas_field"}},
		{"generic", map[string]any{"gas_field": ""}, []string{"gas_field"}},
	}
	for _, c := range cases {
		d := config.Device{ID: "g", Kind: "gas_detector", Driver: c.driver, Topic: "t", Extra: c.extra}
		dev, probs := drivers.Default.New(d)
		var keys []string
		for _, p := range probs {
			keys = append(keys, p.Key)
			if p.Msg == "" {
				t.Errorf("%v: empty message", c.extra)
			}
		}
		if len(keys) != len(c.keys) || (len(keys) > 0 && keys[0] != c.keys[0]) {
			t.Errorf("%s %v: problems %v, want keys %v", c.driver, c.extra, probs, c.keys)
		}
		if (dev == nil) != (len(c.keys) > 0) {
			t.Errorf("%s %v: device %v with problems %v", c.driver, c.extra, dev, probs)
		}
	}
}

func TestTopics(t *testing.T) {
	dev, _ := drivers.Default.New(config.Device{ID: "g", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/g"})
	if got := dev.Topics(); len(got) != 2 || got[1] != "zigbee2mqtt/g/availability" {
		t.Fatalf("topics %v", got)
	}
	dev, _ = drivers.Default.New(config.Device{ID: "g", Kind: "gas_detector", Driver: "generic", Topic: "x/g"})
	if got := dev.Topics(); len(got) != 1 {
		t.Fatalf("topics %v", got)
	}
}
