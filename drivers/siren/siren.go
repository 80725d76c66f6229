// Package siren drives zigbee2mqtt sirens (kind siren): Command builds the
// warning messages; Handle only watches tamper, battery and availability.
package siren

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind this driver serves.
const Kind = "siren"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "zigbee2mqtt", New: NewZigbee2MQTT, Options: options{}, Sample: sample})
}

// options are a siren's keys: the warning it sounds.
type options struct {
	Mode     string  `yaml:"mode"`
	Level    string  `yaml:"level"`
	Strobe   bool    `yaml:"strobe"`
	Duration float64 `yaml:"duration"` // seconds
}

// Values zigbee2mqtt accepts in a warning (zigbee-herdsman-converters
// ts_warning).
var (
	modes  = []string{"stop", "burglar", "fire", "emergency", "police_panic", "fire_panic", "emergency_panic"}
	levels = []string{"low", "medium", "high", "very_high"}
)

// Siren is one zigbee2mqtt siren.
type Siren struct {
	id, topic string
	on        []byte
	avail     kit.Availability
	tamper    kit.Edge
	battLow   kit.Edge
}

var (
	_ drivers.Device    = (*Siren)(nil)
	_ drivers.Commander = (*Siren)(nil)
)

type warning struct {
	Mode     string `json:"mode"`
	Level    string `json:"level,omitempty"`
	Strobe   *bool  `json:"strobe,omitempty"`
	Duration *int   `json:"duration,omitempty"`
}

// NewZigbee2MQTT builds a siren. Keys (options): mode (default emergency),
// level (default very_high), strobe (default true), duration seconds
// (default 300).
func NewZigbee2MQTT(d config.Device) (drivers.Device, []config.Problem) {
	o := options{Mode: "emergency", Level: "very_high", Strobe: true, Duration: 300}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	w := warning{Mode: o.Mode, Level: o.Level}
	strobe, dur := o.Strobe, o.Duration
	var ps kit.Problems
	if !slices.Contains(modes[1:], w.Mode) {
		ps.Add("mode", "%q is not one of %v", w.Mode, modes[1:])
	}
	if !slices.Contains(levels, w.Level) {
		ps.Add("level", "%q is not one of %v", w.Level, levels)
	}
	if dur < 1 || dur > 3600 || dur != float64(int(dur)) {
		ps.Add("duration", "%v must be whole seconds between 1 and 3600", dur)
	}
	secs := int(dur)
	w.Strobe, w.Duration = &strobe, &secs
	if len(ps) > 0 {
		return nil, ps
	}
	on, err := json.Marshal(map[string]warning{"warning": w})
	if err != nil {
		return nil, []config.Problem{{Key: "mode", Msg: err.Error()}}
	}
	return &Siren{id: d.ID, topic: d.Topic, on: on}, nil
}

// Topics is the state topic and its availability topic.
func (s *Siren) Topics() []string { return []string{s.topic, s.topic + kit.AvailabilitySuffix} }

// Command returns the set message for "on" (sound the configured warning)
// or "off" (mode stop).
func (s *Siren) Command(action string) (string, []byte, error) {
	switch action {
	case "on":
		return s.topic + "/set", s.on, nil
	case "off":
		return s.topic + "/set", []byte(`{"warning":{"mode":"stop"}}`), nil
	}
	return "", nil, fmt.Errorf("siren %s: unknown command %q (want on or off)", s.id, action)
}

// Handle reads state reports: device.tamper and device.low_battery on
// their rising edge; availability transitions. Nothing else.
func (s *Siren) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	if evs, ok, err := s.avail.Route(m, o, s.topic, "siren", s.id); ok {
		return evs, err
	}
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("siren %s: %w", s.id, err)
	}
	var errs kit.Errs
	tamper, hasTamper, err := kit.Flag(obj, "tamper")
	errs.Keep(err)
	battLow, hasBatt, err := kit.Flag(obj, "battery_low")
	errs.Keep(err)
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("siren %s: %w", s.id, err)
	}
	var evs []*event.Event
	if hasTamper {
		if rose, _ := s.tamper.Set(tamper); rose {
			evs = append(evs, kit.Event(o, event.DeviceTamper, "", nil))
		}
	}
	if hasBatt {
		if rose, _ := s.battLow.Set(battLow); rose {
			evs = append(evs, kit.Event(o, event.DeviceBattery, "", nil))
		}
	}
	return evs, nil
}
