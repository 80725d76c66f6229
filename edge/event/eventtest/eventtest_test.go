package eventtest

import (
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

func TestNew(t *testing.T) {
	e := New(event.GasLeak)
	if e.Gateway != "gw-test" || e.Source.ID != "gas-3-2-201" || e.Location.Room != "201" || e.Severity != event.Critical || e.ID == "" {
		t.Errorf("default event %+v", e)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e = New(event.GateVehicle, Severity(event.Warning), Source("barrier_gate", "gate-1"), At(at),
		Location(event.Location{Zone: "north"}), Gateway("gw-x", "s"), Data(map[string]any{"plate": "京A12345"}))
	if e.Severity != event.Warning || e.Source.ID != "gate-1" || !e.Time.Equal(at) || e.Location.Zone != "north" ||
		e.Gateway != "gw-x" || e.Data["plate"] != "京A12345" {
		t.Errorf("event %+v", e)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown type did not panic")
		}
	}()
	New("no.such.type")
}
