// Package valve drives motorised gas valves (kind gas_valve): it reports
// valve.closed / valve.opened from state messages and builds the close and
// open commands the interlock sends.
package valve

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind this driver serves.
const Kind = "gas_valve"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "zigbee2mqtt", New: NewZigbee2MQTT, Options: options{}, Sample: sample})
}

// options are a valve's keys.
type options struct {
	ClosedState    string `yaml:"closed_state"`
	OpenState      string `yaml:"open_state"`
	ConfirmTimeout string `yaml:"confirm_timeout"` // a duration; empty: the interlock's default
}

// Default state values: a zigbee2mqtt valve is a switch whose "ON" lets gas
// through, so "OFF" means closed.
const (
	DefaultClosedState = "OFF"
	DefaultOpenState   = "ON"
)

// Valve is one zigbee2mqtt valve.
type Valve struct {
	id, topic          string
	closedSt, openedSt string
	avail              kit.Availability
	state              int8 // 0 unknown, 1 open, 2 closed
	confirm            time.Duration
}

var (
	_ drivers.Device    = (*Valve)(nil)
	_ drivers.Commander = (*Valve)(nil)
)

// NewZigbee2MQTT builds a valve. Keys closed_state (default "OFF") and
// open_state (default "ON") are the state values of the device.
func NewZigbee2MQTT(d config.Device) (drivers.Device, []config.Problem) {
	o := options{ClosedState: DefaultClosedState, OpenState: DefaultOpenState}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	v := &Valve{id: d.ID, topic: d.Topic, closedSt: o.ClosedState, openedSt: o.OpenState}
	var ps kit.Problems
	if s := o.ConfirmTimeout; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 5*time.Minute {
			ps.Add("confirm_timeout", "%q is not a duration between 0 and 5m, like 10s", s)
		}
		v.confirm = d
	}
	if v.closedSt == "" {
		ps.Add("closed_state", "is empty")
	}
	if v.openedSt == "" {
		ps.Add("open_state", "is empty")
	}
	if strings.EqualFold(v.closedSt, v.openedSt) {
		ps.Add("open_state", "%q is the same as closed_state", v.openedSt)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return v, nil
}

// ConfirmTimeout is how long the interlock waits for this valve to report
// closed (config key confirm_timeout); 0 means the interlock's default.
func (v *Valve) ConfirmTimeout() time.Duration { return v.confirm }

// Topics is the state topic and its availability topic.
func (v *Valve) Topics() []string { return []string{v.topic, v.topic + kit.AvailabilitySuffix} }

// Handle reports valve.closed when the valve closes (also on the first
// report: the interlock waits for it) and valve.opened when it opens after
// having been closed (not on the first report, since open is a valve's
// normal state and every valve reports it at startup).
func (v *Valve) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	if evs, ok, err := v.avail.Route(m, o, v.topic, "valve", v.id); ok {
		return evs, err
	}
	closed, ok, err := v.parse(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("valve %s: %w", v.id, err)
	}
	if !ok {
		return nil, nil
	}
	prev := v.state
	data := map[string]any{"state": map[bool]string{true: v.closedSt, false: v.openedSt}[closed]}
	if closed {
		v.state = 2
		if prev != 2 {
			return []*event.Event{kit.Event(o, event.ValveClosed, "", data)}, nil
		}
		return nil, nil
	}
	v.state = 1
	if prev == 2 {
		return []*event.Event{kit.Event(o, event.ValveOpened, "", data)}, nil
	}
	return nil, nil
}

// IsClosed tells the interlock whether a state payload says closed; ok is
// false when the payload carries no valve state or cannot be parsed.
func (v *Valve) IsClosed(payload []byte) (closed bool, ok bool) {
	closed, ok, err := v.parse(payload)
	return closed, ok && err == nil
}

func (v *Valve) parse(payload []byte) (closed, ok bool, err error) {
	obj, err := kit.Object(payload)
	if err != nil {
		return false, false, err
	}
	s, ok, err := kit.String(obj, "state")
	if err != nil || !ok {
		return false, false, err
	}
	switch {
	case strings.EqualFold(s, v.closedSt):
		return true, true, nil
	case strings.EqualFold(s, v.openedSt):
		return false, true, nil
	}
	return false, false, fmt.Errorf("%w: \"state\" %q is neither %q (closed) nor %q (open)", drivers.ErrWrongType, s, v.closedSt, v.openedSt)
}

// Command returns the zigbee2mqtt set message for "close" or "open".
func (v *Valve) Command(action string) (string, []byte, error) {
	var st string
	switch action {
	case "close":
		st = v.closedSt
	case "open":
		st = v.openedSt
	default:
		return "", nil, fmt.Errorf("valve %s: unknown command %q (want close or open)", v.id, action)
	}
	b, err := json.Marshal(map[string]string{"state": st})
	return v.topic + "/set", b, err
}
