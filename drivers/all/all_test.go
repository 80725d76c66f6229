package all_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
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

// TestYAMLConfig checks the driver keys as the real YAML loader decodes
// them (ints, nested mappings, lists), and the devices a device names,
// through Registry.Validate.
func TestYAMLConfig(t *testing.T) {
	good := `
gateway: {id: gw-test, site: s}
devices:
  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: z/gas-1, valve: valve-1, siren: [s1, s2], warn_lel: 8, critical_lel: 20.5}
  - {id: gas-2, kind: gas_detector, driver: gateway3, topic: gw/x/MessageReceived, did: lumi.1}
  - {id: valve-1, kind: gas_valve, driver: zigbee2mqtt, topic: z/valve-1, closed_state: "OFF"}
  - {id: band-1, kind: wristband, driver: zigbee2mqtt, topic: z/band-1, hr_low: 45, hr_high: 120, battery_low: 10, wearer: "Li"}
  - {id: fence-1, kind: perimeter, driver: zigbee2mqtt, topic: z/fence-1, zone: north, debounce_s: 2}
  - {id: gate-1, kind: barrier_gate, driver: hikvision, topic: lpr/1, direction_map: {"1": in, "2": out}, command_topic: lpr/1/cmd}
  - {id: s1, kind: siren, driver: zigbee2mqtt, topic: z/s1, duration: 120, strobe: false}
  - {id: s2, kind: siren, driver: zigbee2mqtt, topic: z/s2}
  - id: x-1
    kind: perimeter
    driver: generic_json
    topic: vendor/x-1
    map:
      type: perimeter.intrusion
      when: {field: alarm, equals: 1}
      data: {zone: site.zone}
`
	if ps := deviceProblems(t, good); len(ps) > 0 {
		t.Fatalf("valid devices rejected: %v", ps)
	}
	bad := `
gateway: {id: gw-test, site: s}
devices:
  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: z/gas-1, valve: 3}
  - {id: gate-1, kind: barrier_gate, driver: hikvision, topic: lpr/1, direction_map: {1: up}}
  - {id: x-1, kind: siren, driver: generic_json, topic: v/x, map: {typ: device.fault}}
  - {id: band-1, kind: wristband, driver: fitbit, topic: z/band-1}
  - {id: gas-2, kind: gas_detector, driver: zigbee2mqtt, topic: z/gas-2, valve: [gate-1, valve-9]}
`
	ps := deviceProblems(t, bad)
	// the typo map.typ is the problem; the strict decoder stops there,
	// before it could miss map.type
	want := map[string]bool{"devices[0].valve": true, "devices[1].direction_map.1": true,
		"devices[2].map.typ": true, "devices[3].driver": true,
		// a valve list naming a gate and a device that does not exist
		"devices[4].valve[0]": true, "devices[4].valve[1]": true}
	for _, p := range ps {
		if !want[p.Key] {
			t.Errorf("unexpected problem %v", p)
		}
		if p.Line == 0 {
			t.Errorf("problem without a line: %v", p)
		}
		delete(want, p.Key)
	}
	if len(want) > 0 {
		t.Errorf("missing problems for %v (got %v)", want, ps)
	}
}

func deviceProblems(t *testing.T, yaml string) []config.Problem {
	t.Helper()
	_, err := config.Parse("test.yaml", []byte(yaml), drivers.Default.Validate)
	if err == nil {
		return nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("parse: %v", err)
	}
	var out []config.Problem
	for _, p := range ce.Problems {
		if strings.HasPrefix(p.Key, "devices") {
			out = append(out, p)
		}
	}
	return out
}

// Every driver's folder sample.yaml has an entry for it that shows every
// key of its typed options (and no other) and that the driver accepts.
func TestSamples(t *testing.T) {
	list := drivers.Default.List()
	if len(list) < 10 {
		t.Fatalf("%d drivers registered", len(list))
	}
	for _, d := range list {
		if d.Options == nil || len(d.Sample) == 0 {
			t.Errorf("%s/%s: no typed options or sample.yaml", d.Kind, d.Name)
			continue
		}
		var entries []yaml.Node
		if err := yaml.Unmarshal(d.Sample, &entries); err != nil {
			t.Errorf("%s/%s: sample.yaml: %v", d.Kind, d.Name, err)
			continue
		}
		var dev *config.Device
		for i := range entries {
			var e config.Device
			if err := entries[i].Decode(&e); err != nil {
				t.Errorf("%s/%s: sample.yaml entry %d: %v", d.Kind, d.Name, i, err)
				continue
			}
			if e.Driver == d.Name && (e.Kind == d.Kind || dev == nil) {
				dev = &e
			}
		}
		if dev == nil {
			t.Errorf("%s/%s: no entry in its sample.yaml", d.Kind, d.Name)
			continue
		}
		want := config.StructKeys(reflect.TypeOf(d.Options))
		// keys inside a map-valued option (direction_map.in) are data
		got := slices.DeleteFunc(dev.DriverOptions().Keys(), func(k string) bool {
			return slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(k, w+".") && !slices.Contains(want, k) })
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s/%s: sample.yaml shows %v, its options are %v", d.Kind, d.Name, got, want)
		}
		dev.Kind = d.Kind
		if _, ps := drivers.Default.New(*dev); len(ps) > 0 {
			t.Errorf("%s/%s: sample.yaml entry refused: %v", d.Kind, d.Name, ps)
		}
	}
}

// Each device of configs/warden.yaml shows every key of its driver, as the
// file promises.
func TestReferenceDevices(t *testing.T) {
	c, err := config.Load(filepath.Join(testenv.RepoRoot(t), "configs", "warden.yaml"), drivers.Default.Validate)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Devices) == 0 {
		t.Fatal("no devices in configs/warden.yaml")
	}
	for _, dev := range c.Devices {
		for _, d := range drivers.Default.List() {
			if d.Kind != dev.Kind || d.Name != dev.Driver {
				continue
			}
			have := dev.DriverOptions().Keys()
			for _, k := range config.StructKeys(reflect.TypeOf(d.Options)) {
				if !slices.Contains(have, k) {
					t.Errorf("configs/warden.yaml: device %s (%s/%s) does not show its driver key %s", dev.ID, d.Kind, d.Name, k)
				}
			}
		}
	}
}
