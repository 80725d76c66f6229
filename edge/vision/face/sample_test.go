package face

import (
	"testing"

	"github.com/smartcommunity/warden/edge/config"
)

// sample.yaml shows the defaults.
func TestSampleIsDefaults(t *testing.T) {
	sec, err := config.ParseSection(sample)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := ParseOptions("sample", sec); err != nil || o != Defaults() {
		t.Errorf("sample.yaml gives %+v (%v), defaults are %+v", o, err, Defaults())
	}
}
