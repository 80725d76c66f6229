package gate_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/gate"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func TestRealPayloadsCovered(t *testing.T) {
	kittest.RequireRealCovered(t, "testdata/*.jsonl", "barrier-gate/LPR")
}

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func TestCommand(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		topic string
	}{
		{nil, "lpr/east/set"},
		{map[string]any{"command_topic": "barrier/east/cmd"}, "barrier/east/cmd"},
	} {
		dev, probs := drivers.Default.New(config.Device{ID: "g", Kind: "barrier_gate", Driver: "hikvision", Topic: "lpr/east", Extra: c.extra})
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		cmd := dev.(drivers.Commander)
		for _, a := range []string{"open", "close"} {
			topic, p, err := cmd.Command(a)
			if err != nil || topic != c.topic || string(p) != `{"command":"`+a+`"}` {
				t.Errorf("%s: %s %s %v", a, topic, p, err)
			}
		}
		if _, _, err := cmd.Command("lift"); err == nil {
			t.Error("unknown command accepted")
		}
	}
	var _ drivers.Commander = (*gate.Gate)(nil)
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{map[string]any{"direction": "sideways"}, "direction"},
		{map[string]any{"direction": 1}, "direction"},
		{map[string]any{"command_topic": "a/+/b"}, "command_topic"},
		{map[string]any{"direction_map": "1=in"}, "direction_map"},
		{map[string]any{"direction_map": map[string]any{"1": "up"}}, "direction_map.1"},
		{map[string]any{"allow": []any{"A1"}}, "allow"},
	} {
		_, probs := drivers.Default.New(config.Device{ID: "g", Kind: "barrier_gate", Driver: "hikvision", Topic: "t", Extra: c.extra})
		if len(probs) != 1 || probs[0].Key != c.key {
			t.Errorf("%v: %v, want key %s", c.extra, probs, c.key)
		}
	}
}
