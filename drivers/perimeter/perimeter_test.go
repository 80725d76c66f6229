package perimeter_test

import (
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kittest"
	_ "github.com/smartcommunity/warden/drivers/perimeter"
	"github.com/smartcommunity/warden/edge/config"
)

func TestFixtures(t *testing.T) { kittest.Run(t, "testdata/*.jsonl") }

func TestRealPayloadsCovered(t *testing.T) {
	kittest.RequireRealCovered(t, "testdata/*.jsonl", "perimeter-vibration")
}

func FuzzHandle(f *testing.F) { kittest.Fuzz(f, "testdata/*.jsonl") }

func TestVibrationDebounce(t *testing.T) {
	d := config.Device{ID: "f", Kind: "perimeter", Driver: "zigbee2mqtt", Topic: "z/f", Extra: map[string]any{"debounce_s": 2}}
	dev, probs := drivers.Default.New(d)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	o := kittest.Origin(d)
	t0 := o.Time
	n := 0
	for _, dt := range []time.Duration{0, time.Second, 3 * time.Second, 3500 * time.Millisecond} {
		o.Time = t0.Add(dt)
		evs, err := dev.Handle(drivers.Message{Topic: "z/f", Payload: []byte(`{"action":"vibration"}`)}, o)
		if err != nil {
			t.Fatal(err)
		}
		n += len(evs)
	}
	if n != 2 {
		t.Fatalf("%d intrusions, want 2", n)
	}
}

func TestConfigProblems(t *testing.T) {
	for _, c := range []struct {
		extra map[string]any
		key   string
	}{
		{map[string]any{"zone": 1}, "zone"},
		{map[string]any{"debounce_s": "soon"}, "debounce_s"},
		{map[string]any{"debounce_s": 9999}, "debounce_s"},
		{map[string]any{"armed": true}, "armed"},
	} {
		_, probs := drivers.Default.New(config.Device{ID: "p", Kind: "perimeter", Driver: "zigbee2mqtt", Topic: "t", Extra: c.extra})
		if len(probs) != 1 || probs[0].Key != c.key {
			t.Errorf("%v: %v, want key %s", c.extra, probs, c.key)
		}
	}
}
