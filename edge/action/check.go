package action

import (
	"fmt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
)

// Check is a config.Check: every device a device names in its options (a
// detector's valve and siren, drivers.Linker) is a configured device of the
// right kind. A typo here would leave a leak with no valve to close, so it
// fails at start. Devices whose driver keys are wrong are reported by
// drivers.Registry.Validate.
func Check(c *config.Config) []config.Problem {
	kinds := map[string]string{}
	for _, d := range c.Devices {
		kinds[d.ID] = d.Kind
	}
	var ps []config.Problem
	for i, d := range c.Devices {
		dev, probs := drivers.Default.New(d)
		l, ok := dev.(drivers.Linker)
		if len(probs) > 0 || !ok {
			continue
		}
		for _, link := range l.Links() {
			for j, id := range link.IDs {
				k := fmt.Sprintf("devices[%d].%s", i, link.Key)
				if len(link.IDs) > 1 {
					k = fmt.Sprintf("%s[%d]", k, j)
				}
				switch kind, found := kinds[id]; {
				case !found:
					ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("no device has id %q: a %s here must be a configured %s", id, link.Key, link.Kind)})
				case kind != link.Kind:
					ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("device %q is a %s, not a %s", id, kind, link.Kind)})
				}
			}
		}
	}
	return ps
}
