package kit

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/event"
)

// AvailabilitySuffix is appended to a zigbee2mqtt device topic for its
// availability topic.
const AvailabilitySuffix = "/availability"

// Availability turns zigbee2mqtt availability messages ("online"/"offline"
// in legacy mode, {"state":"online"} since z2m 1.22) into device.online and
// device.offline on transitions. The first "offline" seen is reported (a
// device dead since before a restart is news); the first "online" is not
// (every device announces it at startup, retained).
type Availability struct {
	state int8 // 0 unknown, 1 online, 2 offline
}

// Handle parses one availability payload.
func (a *Availability) Handle(payload []byte, o event.Origin) ([]*event.Event, error) {
	p := bytes.TrimSpace(payload)
	var state string
	switch {
	case len(p) > 0 && p[0] == '{':
		obj, err := Object(p)
		if err != nil {
			return nil, err
		}
		s, ok, err := String(obj, "state")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: availability object without \"state\"", drivers.ErrBadPayload)
		}
		state = s
	case len(p) > 0 && p[0] == '"':
		if err := json.Unmarshal(p, &state); err != nil {
			return nil, fmt.Errorf("%w: availability: %v", drivers.ErrBadPayload, err)
		}
	default:
		state = string(p)
	}
	switch state {
	case "online":
		prev := a.state
		a.state = 1
		if prev == 2 {
			return []*event.Event{Event(o, event.DeviceOnline, "", nil)}, nil
		}
		return nil, nil
	case "offline":
		prev := a.state
		a.state = 2
		if prev != 2 {
			return []*event.Event{Event(o, event.DeviceOffline, "", nil)}, nil
		}
		return nil, nil
	}
	if len(state) > 32 {
		state = state[:32] + "…"
	}
	return nil, fmt.Errorf("%w: availability %q is not online or offline", drivers.ErrBadPayload, state)
}

// Route handles m when it arrived on the availability topic of the device
// whose state topic is topic, and reports whether it did; errors name the
// driver kind and device id. A nil Availability (a protocol without one)
// handles nothing.
func (a *Availability) Route(m drivers.Message, o event.Origin, topic, kind, id string) (evs []*event.Event, handled bool, err error) {
	if a == nil || m.Topic != topic+AvailabilitySuffix {
		return nil, false, nil
	}
	evs, err = a.Handle(m.Payload, o)
	if err != nil {
		return nil, true, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return evs, true, nil
}
