package action

import (
	"fmt"

	"github.com/smartcommunity/warden/edge/config"
)

// refKeys are device keys that name actuators, with the kind each must be.
var refKeys = []struct{ key, kind string }{{"valve", "gas_valve"}, {"siren", "siren"}}

// Check is a config.Check: every actuator a device names (a detector's
// valve and siren) is a configured device of the right kind. A typo here
// would leave a leak with no valve to close, so it fails at start.
func Check(c *config.Config) []config.Problem {
	kinds := map[string]string{}
	for _, d := range c.Devices {
		kinds[d.ID] = d.Kind
	}
	var ps []config.Problem
	for i, d := range c.Devices {
		for _, r := range refKeys {
			v, ok := d.Extra[r.key]
			if !ok {
				continue
			}
			key := fmt.Sprintf("devices[%d].%s", i, r.key)
			ids, isList := v.([]any)
			if !isList {
				ids = []any{v}
			}
			for j, x := range ids {
				k := key
				if isList {
					k = fmt.Sprintf("%s[%d]", key, j)
				}
				id, isStr := x.(string)
				switch kind, found := kinds[id]; {
				case !isStr:
					continue // the driver reports the wrong type
				case !found:
					ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("no device has id %q: a %s here must be a configured %s", id, r.key, r.kind)})
				case kind != r.kind:
					ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("device %q is a %s, not a %s", id, kind, r.kind)})
				}
			}
		}
	}
	return ps
}
