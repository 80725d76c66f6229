package gateway

import (
	"fmt"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all" // every device driver registers itself
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gate"
	"github.com/smartcommunity/warden/edge/liveness"
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/vision/face"
	"github.com/smartcommunity/warden/edge/vision/motion"
	"github.com/smartcommunity/warden/edge/vision/throw"
	"github.com/smartcommunity/warden/edge/zones"
)

// Checks are the validations owned by other packages; every command that
// loads a config runs them, so check-config and run agree.
var Checks = []config.Check{drivers.Default.Validate, action.Check, gate.Check, liveness.Check, rules.Check, zones.Check,
	throw.Check, detectorCheck("face", face.ParseOptions), detectorCheck("motion", motion.ParseOptions)}

// detectorCheck runs a detector's strict option parser on every camera that
// has its section, so a typo fails at config load with the camera's line.
func detectorCheck[O any](name string, parse func(map[string]any) (O, error)) config.Check {
	return func(c *config.Config) []config.Problem {
		var ps []config.Problem
		for i, cam := range c.Cameras {
			sec := map[string]map[string]any{"face": cam.Detect.Face, "motion": cam.Detect.Motion}[name]
			if sec == nil {
				continue
			}
			if _, err := parse(sec); err != nil {
				ps = append(ps, config.Problem{Key: fmt.Sprintf("cameras[%d].detect.%s", i, name), Msg: err.Error()})
			}
		}
		return ps
	}
}

// LoadConfig loads a config and runs every check.
func LoadConfig(path string) (*config.Config, error) {
	return config.Load(path, Checks...)
}
