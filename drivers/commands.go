package drivers

import (
	"slices"
	"strings"

	"github.com/smartcommunity/warden/edge/config"
)

// IsCommandTopic reports topics that command something whatever device they
// belong to, so only the gateway may write them: Warden's own tree
// (warden/…), a last level of set, command or cmd, zigbee2mqtt's
// per-attribute form <name>/set/<attr>, and any …/bridge/request/… (a
// zigbee2mqtt bridge obeys permit_join, device removal and more there).
func IsCommandTopic(topic string) bool {
	lv := strings.Split(topic, "/")
	if IsWardenTopic(topic) || isBridgeRequest(lv) {
		return true
	}
	switch lv[len(lv)-1] {
	case "set", "command", "cmd":
		return len(lv) > 1
	}
	for i := 1; i < len(lv)-1; i++ {
		if lv[i] == "set" {
			return true
		}
	}
	return false
}

func isBridgeRequest(lv []string) bool {
	for i := 1; i < len(lv); i++ {
		if lv[i-1] == "bridge" && lv[i] == "request" {
			return true
		}
	}
	return false
}

// commandActions are the actions a Commander is asked about to learn its
// topics; one it does not know is skipped.
var commandActions = []string{"close", "open", "on", "off"}

// CommandSpace is every topic an actuator obeys: the generic command forms
// of IsCommandTopic plus each configured actuator's own command topics and
// their sub-topics.
type CommandSpace struct {
	filters []string
}

// CommandSpace builds the command space of the configured devices. Devices
// that do not build are skipped (config validation reports them).
func (r *Registry) CommandSpace(devs []config.Device) *CommandSpace {
	s := &CommandSpace{}
	for _, d := range devs {
		dev, ps := r.New(d)
		if len(ps) > 0 {
			continue
		}
		c, ok := dev.(Commander)
		if !ok {
			continue
		}
		for _, a := range commandActions {
			t, _, err := c.Command(a)
			if err != nil || t == "" {
				continue
			}
			for _, f := range []string{t, t + "/#"} {
				if !slices.Contains(s.filters, f) {
					s.filters = append(s.filters, f)
				}
			}
		}
	}
	slices.Sort(s.filters)
	return s
}

// Filters are the actuators' own command filters, sorted.
func (s *CommandSpace) Filters() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.filters)
}

// Contains reports whether writing topic could command an actuator.
func (s *CommandSpace) Contains(topic string) bool {
	return IsCommandTopic(topic) || s.own(topic)
}

// own reports whether topic is one of the configured actuators' own.
func (s *CommandSpace) own(topic string) bool {
	if s == nil {
		return false
	}
	for _, f := range s.filters {
		if MatchFilter(f, topic) {
			return true
		}
	}
	return false
}

// Actuator reports whether writing topic could command one of the
// configured actuators (or every zigbee2mqtt device at once through its
// bridge), or speak for the gateway (warden/…). Rules may not publish
// there: a rule that could open a valve is refused.
func (s *CommandSpace) Actuator(topic string) bool {
	return IsWardenTopic(topic) || isBridgeRequest(strings.Split(topic, "/")) || s.own(topic)
}

// IsWardenTopic reports Warden's own tree, warden/…, which speaks for the
// gateway (status, events, alarms).
func IsWardenTopic(topic string) bool {
	return topic == "warden" || strings.HasPrefix(topic, "warden/")
}

// MatchFilter reports whether the MQTT topic filter matches a topic name.
func MatchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "#") || strings.HasPrefix(filter, "+")) {
		return false // [MQTT-4.7.2-1]
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a"
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
