package vision_test

import (
	"testing"

	"github.com/smartcommunity/warden/edge/config"
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
	// A typo in a section fails the load, naming the camera's key.
	c := &config.Config{Cameras: []config.Camera{{ID: "c", Detect: config.Detect{Motion: map[string]any{"sensitivty": 3}}}}}
	var problems []config.Problem
	for _, check := range vision.Checks() {
		problems = append(problems, check(c)...)
	}
	if len(problems) != 1 || problems[0].Key != "cameras[0].detect.motion" {
		t.Fatalf("problems %+v, want one for cameras[0].detect.motion", problems)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering motion twice did not panic")
		}
	}()
	vision.Register(vision.Plugin{Name: "motion"})
}
