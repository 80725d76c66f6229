package all_test

import (
	"testing"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
)

// TestEveryKindHasDrivers guards against a driver folder missing from all.go.
func TestEveryKindHasDrivers(t *testing.T) {
	want := map[string][]string{
		"gas_detector": {"gateway3", "generic", "generic_json", "zigbee2mqtt"},
		"gas_valve":    {"generic_json", "zigbee2mqtt"},
		"wristband":    {"generic_json", "theengs", "tuya", "zigbee2mqtt"},
		"perimeter":    {"generic_json", "zigbee2mqtt"},
		"barrier_gate": {"generic", "generic_json", "hikvision"},
		"siren":        {"generic_json", "zigbee2mqtt"},
	}
	for _, k := range config.DeviceKinds {
		got := drivers.Default.Drivers(k)
		if len(got) != len(want[k]) {
			t.Errorf("%s: drivers %v, want %v", k, got, want[k])
			continue
		}
		for i := range got {
			if got[i] != want[k][i] {
				t.Errorf("%s: drivers %v, want %v", k, got, want[k])
			}
		}
	}
}
