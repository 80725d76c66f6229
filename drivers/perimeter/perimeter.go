// Package perimeter reads perimeter sensors (kind perimeter): vibration on
// fences, door/gate contacts and beams. It reports every intrusion
// candidate; whether the zone is armed is decided by rules elsewhere.
package perimeter

import (
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind this driver serves.
const Kind = "perimeter"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "zigbee2mqtt", New: NewZigbee2MQTT, Options: options{}, Sample: sample})
}

// options are a perimeter sensor's keys.
type options struct {
	Zone      *string `yaml:"zone"`       // default the location's zone
	DebounceS float64 `yaml:"debounce_s"` // seconds between vibration alarms
}

// DefaultDebounce bounds how often one sensor's vibration actions alarm.
const DefaultDebounce = 5 * time.Second

// Inputs named in event data.
const (
	InputVibration = "vibration"
	InputContact   = "contact"
	InputBeam      = "beam"
)

// Sensor is one zigbee2mqtt perimeter sensor.
type Sensor struct {
	id, topic, zone string
	debounce        time.Duration
	avail           kit.Availability

	lastVibration     time.Time
	opened, beam      kit.Edge
	tamper, batteryLo kit.Edge
}

// NewZigbee2MQTT builds a sensor. Keys: zone (default the location's
// zone), debounce_s (default 5).
func NewZigbee2MQTT(d config.Device) (drivers.Device, []config.Problem) {
	o := options{DebounceS: DefaultDebounce.Seconds()}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	s := &Sensor{id: d.ID, topic: d.Topic, zone: d.Location.Zone}
	if o.Zone != nil {
		s.zone = *o.Zone
	}
	deb := o.DebounceS
	if deb < 0 || deb > 600 {
		return nil, []config.Problem{{Key: "debounce_s", Msg: fmt.Sprintf("%v must be between 0 and 600 seconds", deb)}}
	}
	s.debounce = time.Duration(deb * float64(time.Second))
	return s, nil
}

// Topics is the state topic and its availability topic.
func (s *Sensor) Topics() []string { return []string{s.topic, s.topic + kit.AvailabilitySuffix} }

// Handle parses one message; a wrong field type yields an error, no events
// and no state change.
func (s *Sensor) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	if evs, ok, err := s.avail.Route(m, o, s.topic, "perimeter", s.id); ok {
		return evs, err
	}
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("perimeter %s: %w", s.id, err)
	}
	var errs kit.Errs
	action, _, err := kit.String(obj, "action")
	errs.Keep(err)
	contact, hasContact, err := kit.Flag(obj, "contact")
	errs.Keep(err)
	occupancy, hasOcc, err := kit.Flag(obj, "occupancy")
	errs.Keep(err)
	tamper, hasTamper, err := kit.Flag(obj, "tamper")
	errs.Keep(err)
	battLow, hasBatt, err := kit.Flag(obj, "battery_low")
	errs.Keep(err)
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("perimeter %s: %w", s.id, err)
	}

	var evs []*event.Event
	intrusion := func(input string, extra map[string]any) {
		d := map[string]any{"zone": s.zone, "input": input}
		for k, v := range extra {
			d[k] = v
		}
		evs = append(evs, kit.Event(o, event.PerimeterIntr, "", d))
	}
	switch a := strings.ToLower(action); a {
	case "vibration", "tilt", "drop":
		if s.lastVibration.IsZero() || o.Time.Sub(s.lastVibration) >= s.debounce || o.Time.Before(s.lastVibration) {
			intrusion(InputVibration, map[string]any{"action": a})
		}
		s.lastVibration = o.Time
	}
	if hasContact {
		// contact false = open; an open door seen first after a restart counts.
		if rose, _ := s.opened.Set(!contact); rose {
			intrusion(InputContact, nil)
		}
	}
	if hasOcc {
		if rose, _ := s.beam.Set(occupancy); rose {
			intrusion(InputBeam, nil)
		}
	}
	if hasTamper {
		if rose, _ := s.tamper.Set(tamper); rose {
			evs = append(evs, kit.Event(o, event.PerimeterTamper, "", map[string]any{"zone": s.zone}))
		}
	}
	if hasBatt {
		if rose, _ := s.batteryLo.Set(battLow); rose {
			evs = append(evs, kit.Event(o, event.DeviceBattery, "", nil))
		}
	}
	return evs, nil
}
