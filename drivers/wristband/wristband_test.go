package wristband_test

import (
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	_ "github.com/smartcommunity/warden/drivers/wristband"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func TestRealPayloadsCovered(t *testing.T) {
	kittest.RequireRealCovered(t, "testdata/*.jsonl", "sos", "wristband", "ble-presence")
}

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

// TestSOSDebounce: reports of one press inside the window alarm once; a
// press after the window alarms again.
func TestSOSDebounce(t *testing.T) {
	d := config.Device{ID: "s", Kind: "wristband", Driver: "tuya", Topic: "z/s", Extra: map[string]any{"sos_debounce_s": 5}}
	dev, probs := drivers.Default.New(d)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	o := kittest.Origin(d)
	t0 := o.Time
	count := 0
	for _, dt := range []time.Duration{0, time.Second, 4 * time.Second, 10 * time.Second, 11 * time.Second} {
		o.Time = t0.Add(dt)
		evs, err := dev.Handle(drivers.Message{Topic: "z/s", Payload: []byte(`{"action":"emergency"}`)}, o)
		if err != nil {
			t.Fatal(err)
		}
		count += len(evs)
	}
	if count != 2 {
		t.Fatalf("%d SOS events, want 2 (t=0 and t=10s)", count)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{map[string]any{"hr_low": "low"}, "hr_low"},
		{map[string]any{"hr_low": 140}, "hr_low"},
		{map[string]any{"hr_high": 400}, "hr_high"},
		{map[string]any{"battery_low": 120}, "battery_low"},
		{map[string]any{"battery_low": true}, "battery_low"},
		{map[string]any{"wearer": 7}, "wearer"},
		{map[string]any{"sos_debounce_s": -1}, "sos_debounce_s"},
		{map[string]any{"gas": true}, "gas"},
	} {
		for _, drv := range []string{"tuya", "zigbee2mqtt", "theengs"} {
			_, probs := drivers.Default.New(config.Device{ID: "w", Kind: "wristband", Driver: drv, Topic: "t", Extra: c.extra})
			if len(probs) != 1 || probs[0].Key != c.key {
				t.Errorf("%s %v: %v, want key %s", drv, c.extra, probs, c.key)
			}
		}
	}
	if _, probs := drivers.Default.New(config.Device{ID: "w", Kind: "wristband", Driver: "zigbee2mqtt", Topic: "t",
		Extra: map[string]any{"hr_low": 45, "hr_high": 110.5, "battery_low": 10, "wearer": "A", "sos_debounce_s": 0}}); len(probs) > 0 {
		t.Errorf("valid config: %v", probs)
	}
}
