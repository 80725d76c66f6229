package gateway

import (
	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all" // every device driver registers itself
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gate"
	"github.com/smartcommunity/warden/edge/liveness"
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/vision"
	_ "github.com/smartcommunity/warden/edge/vision/face" // detectors register themselves
	_ "github.com/smartcommunity/warden/edge/vision/motion"
	_ "github.com/smartcommunity/warden/edge/vision/throw"
	"github.com/smartcommunity/warden/edge/zones"
)

// Checks are the validations owned by other packages; every command that
// loads a config runs them, so check-config and run agree. Each detector
// brings its own (the edge/vision registry).
var Checks = append([]config.Check{drivers.Default.Validate, gate.Check, liveness.Check, rules.Check, zones.Check},
	vision.Checks()...)

// LoadConfig loads a config and runs every check.
func LoadConfig(path string) (*config.Config, error) {
	return config.Load(path, Checks...)
}
