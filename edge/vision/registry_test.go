package vision_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/vision"
	_ "github.com/smartcommunity/warden/edge/vision/face"
	_ "github.com/smartcommunity/warden/edge/vision/motion"
	_ "github.com/smartcommunity/warden/edge/vision/throw"
)

// Every detector registers itself once, in frame order, with a check of
// its section; the gateway can replace or leave out one by name.
func TestRegistry(t *testing.T) {
	var names []string
	for _, p := range vision.Plugins() {
		names = append(names, p.Name)
		if p.New == nil || p.Check == nil {
			t.Errorf("%s: factory or check missing", p.Name)
		}
	}
	if len(names) != 3 || names[0] != "motion" || names[1] != "face" || names[2] != "throw" {
		t.Fatalf("plugins %v, want motion, face, throw", names)
	}
	if n := len(vision.Factories(map[string]vision.Factory{"face": nil})); n != 2 {
		t.Errorf("%d factories without face, want 2", n)
	}
	called := false
	fs := vision.Factories(map[string]vision.Factory{"face": func(config.Camera) (vision.Detector, error) { called = true; return nil, nil }})
	if _, err := fs[1](config.Camera{}); err != nil || !called {
		t.Error("the replacement face factory is not second")
	}
	// A typo in a section fails the load, naming the key.
	c := &config.Config{Cameras: []config.Camera{{ID: "c", Detect: config.Detect{Motion: config.SectionOf(map[string]any{"sensitivty": 3})}}}}
	var problems []config.Problem
	for _, check := range vision.Checks() {
		problems = append(problems, check(c)...)
	}
	if len(problems) != 1 || problems[0].Key != "cameras[0].detect.motion.sensitivty" {
		t.Fatalf("problems %+v, want one for cameras[0].detect.motion.sensitivty", problems)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering motion twice did not panic")
		}
	}()
	vision.Register(vision.Plugin{Name: "motion"})
}

// Every detector's sample.yaml shows every key of its typed options, with
// their defaults, passes the detector's own check, and every key appears in
// configs/warden.yaml: the drift guard for plugin keys.
func TestSamplesAndReference(t *testing.T) {
	reference := testenv.ReferenceKeys(t)
	plugins := vision.Plugins()
	if len(plugins) < 3 {
		t.Fatalf("%d detectors registered", len(plugins))
	}
	for _, p := range plugins {
		sec, err := config.ParseSection(p.Sample)
		if err != nil {
			t.Errorf("%s: sample.yaml: %v", p.Name, err)
			continue
		}
		want := config.StructKeys(reflect.TypeOf(p.Options))
		if got := sec.Keys(); !slices.Equal(got, want) {
			t.Errorf("%s: sample.yaml keys %v, typed options %v", p.Name, got, want)
		}
		cfg := &config.Config{Cameras: []config.Camera{{ID: "c", Detect: config.Detect{FPS: 25}}}}
		switch p.Name {
		case "face":
			cfg.Cameras[0].Detect.Face = sec
		case "motion":
			cfg.Cameras[0].Detect.Motion = sec
		case "throw":
			cfg.Cameras[0].Detect.Throw = sec
		default:
			t.Errorf("%s: config.Detect has no section for it", p.Name)
		}
		if ps := p.Check(cfg); len(ps) > 0 {
			t.Errorf("%s: sample.yaml fails its check: %v", p.Name, ps)
		}
		for _, k := range want {
			if !reference["cameras[].detect."+p.Name+"."+k] {
				t.Errorf("configs/warden.yaml shows no cameras[].detect.%s.%s (see edge/vision/%s/sample.yaml)", p.Name, k, p.Name)
			}
		}
	}
}
