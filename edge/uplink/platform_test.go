package uplink_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
)

// Every target kind is registered with its config type and a sample.yaml
// showing every key, and configs/warden.yaml shows each: the drift guard
// for target keys.
func TestKindsSamplesAndReference(t *testing.T) {
	reference := testenv.ReferenceKeys(t)
	ks := uplink.Kinds()
	var names []string
	for _, k := range ks {
		names = append(names, k.Name)
	}
	if !slices.Equal(names, []string{"http", "mqtt", "gat1400"}) {
		t.Fatalf("kinds %v, want http, mqtt, gat1400 in that order", names)
	}
	for _, k := range ks {
		sec, err := config.ParseSection(k.Sample)
		if err != nil {
			t.Errorf("%s: sample.yaml: %v", k.Name, err)
			continue
		}
		want := config.StructKeys(reflect.TypeOf(k.Options))
		if got := sec.Keys(); !slices.Equal(got, want) {
			t.Errorf("%s: sample.yaml keys %v, config keys %v", k.Name, got, want)
		}
		if errs := sec.DecodeAll("uplink."+k.Name, reflect.New(reflect.TypeOf(k.Options)).Interface()); len(errs) > 0 {
			t.Errorf("%s: sample.yaml does not decode: %v", k.Name, errs)
		}
		for _, key := range want {
			if !reference["uplink."+k.Name+"."+key] {
				t.Errorf("configs/warden.yaml shows no uplink.%s.%s", k.Name, key)
			}
		}
	}
}
