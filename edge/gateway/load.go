package gateway

import (
	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all" // every device driver registers itself
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gate"
	"github.com/smartcommunity/warden/edge/liveness"
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/zones"
)

// Checks are the validations owned by other packages; every command that
// loads a config runs them, so check-config and run agree.
var Checks = []config.Check{drivers.Default.Validate, gate.Check, liveness.Check, rules.Check, zones.Check}

// LoadConfig loads a config and runs every check.
func LoadConfig(path string) (*config.Config, error) {
	return config.Load(path, Checks...)
}
