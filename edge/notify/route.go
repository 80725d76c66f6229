package notify

import (
	"slices"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
)

type route struct {
	types      []string // exact types; groups are in prefixes
	prefixes   []string // "gas." for "gas.*"
	priorities []int
	buildings  []string
	zones      []string
	hours      config.Window
	actions    []string
	targets    []string
}

func newRoute(c config.NotifyRoute) route {
	r := route{priorities: c.Priorities, buildings: c.Buildings, zones: c.Zones, hours: c.Hours,
		actions: c.Actions, targets: c.Targets}
	if len(r.actions) == 0 {
		r.actions = []string{alarm.ActOpened, alarm.ActEscalated}
	}
	for _, t := range c.Types {
		if p, ok := strings.CutSuffix(t, "*"); ok {
			r.prefixes = append(r.prefixes, p)
		} else {
			r.types = append(r.types, t)
		}
	}
	return r
}

// match reports whether the route takes this change of a at now (local
// time for hours).
func (r *route) match(a *alarm.Alarm, action string, now time.Time) bool {
	if !slices.Contains(r.actions, action) {
		return false
	}
	if len(r.types)+len(r.prefixes) > 0 && !slices.Contains(r.types, a.Type) &&
		!slices.ContainsFunc(r.prefixes, func(p string) bool { return strings.HasPrefix(a.Type, p) }) {
		return false
	}
	if len(r.priorities) > 0 && !slices.Contains(r.priorities, a.Priority) {
		return false
	}
	if len(r.buildings) > 0 && !slices.Contains(r.buildings, a.Location.Building) {
		return false
	}
	if len(r.zones) > 0 && !slices.Contains(r.zones, a.Location.Zone) {
		return false
	}
	return !r.hours.IsSet() || r.hours.Contains(now)
}
