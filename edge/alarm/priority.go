package alarm

import "strings"

// Priorities: the class an alarm belongs to. It orders the console list,
// picks the console's sound and can select notify routes. Escalation never
// changes it.
const (
	PriorityLife     = 1 // life safety: gas, valve fault, SOS, fall, throw
	PrioritySecurity = 2 // intrusion, watch list, tamper, the gateway itself
	PriorityRoutine  = 3 // gate, faces, device health
)

var defaultPriorities = map[string]int{
	"gas.leak": PriorityLife, "valve.fault": PriorityLife, "wristband.sos": PriorityLife,
	"wristband.fall": PriorityLife, "throw.detected": PriorityLife,
	"perimeter.*": PrioritySecurity, "face.watchlist": PrioritySecurity, "system.*": PrioritySecurity,
	"device.tamper": PrioritySecurity,
}

// Priority returns the priority of an alarm type: the override for the
// type, else for its group ("gate.*"), else the default.
func Priority(overrides map[string]int, typ string) int {
	group := typ
	if i := strings.IndexByte(typ, '.'); i > 0 {
		group = typ[:i] + ".*"
	}
	for _, m := range []map[string]int{overrides, defaultPriorities} {
		if p, ok := m[typ]; ok {
			return p
		}
		if p, ok := m[group]; ok {
			return p
		}
	}
	return PriorityRoutine
}
