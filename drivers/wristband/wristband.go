// Package wristband reads wearables and panic buttons (kind wristband):
// SOS presses, falls, heart rate outside the wearer's limits and low
// battery. Silence (wristband.inactive) is the liveness watcher's job.
package wristband

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind these drivers serve.
const Kind = "wristband"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "tuya", New: NewTuya, Options: options{}, Sample: sample})
	drivers.Register(drivers.Driver{Kind: Kind, Name: "zigbee2mqtt", New: NewZigbee2MQTT, Options: options{}, Sample: sample})
	drivers.Register(drivers.Driver{Kind: Kind, Name: "theengs", New: NewTheengs, Options: options{}, Sample: sample})
}

// options are a wearer's keys (every driver).
type options struct {
	Wearer       string  `yaml:"wearer"`         // who wears it, for guards
	HRLow        float64 `yaml:"hr_low"`         // bpm below which heart rate alarms
	HRHigh       float64 `yaml:"hr_high"`        // bpm above which it alarms
	BatteryLow   float64 `yaml:"battery_low"`    // % at which the battery is low
	SOSDebounceS float64 `yaml:"sos_debounce_s"` // seconds between two SOS alarms
}

// Defaults of the per-wearer limits.
const (
	DefaultHRLow       = 40
	DefaultHRHigh      = 130
	DefaultBatteryLow  = 15
	DefaultSOSDebounce = 10 * time.Second
)

// Band is one configured wristband or SOS button.
type Band struct {
	id, topic   string
	wearer      string
	hrLow       float64
	hrHigh      float64
	battLow     float64
	sosDebounce time.Duration
	sosActions  []string
	fields      fields
	avail       *kit.Availability

	lastSOS  time.Time
	fall     kit.Edge
	lowBatt  kit.Edge
	hrSev    event.Severity // severity of the current excursion, "" when in range
	lat, lon *float64       // last reported position
	bpm, bat *float64       // last measured heart rate (0 = not measured is skipped) and battery
}

var _ drivers.Reader = (*Band)(nil)

// Readings are the last heart rate and battery level reported.
func (b *Band) Readings() map[string]float64 {
	m := map[string]float64{}
	if b.bpm != nil {
		m["heart_rate"] = *b.bpm
	}
	if b.bat != nil {
		m["battery"] = *b.bat
	}
	return m
}

// fields names where a dialect puts things.
type fields struct {
	bpm     []string
	battery []string
}

var z2mFields = fields{bpm: []string{"heart_rate"}, battery: []string{"battery"}}

func newBand(d config.Device) (*Band, []config.Problem) {
	o := options{HRLow: DefaultHRLow, HRHigh: DefaultHRHigh, BatteryLow: DefaultBatteryLow, SOSDebounceS: DefaultSOSDebounce.Seconds()}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	b := &Band{id: d.ID, topic: d.Topic, wearer: o.Wearer, hrLow: o.HRLow, hrHigh: o.HRHigh, battLow: o.BatteryLow}
	var ps kit.Problems
	deb := o.SOSDebounceS
	if deb < 0 || deb > 600 {
		ps.Add("sos_debounce_s", "%v must be between 0 and 600 seconds", deb)
	}
	b.sosDebounce = time.Duration(deb * float64(time.Second))
	if b.hrLow <= 0 || b.hrLow >= b.hrHigh {
		ps.Add("hr_low", "%v must be above 0 and below hr_high %v", b.hrLow, b.hrHigh)
	}
	if b.hrHigh > 300 {
		ps.Add("hr_high", "%v is above 300 bpm", b.hrHigh)
	}
	if b.battLow < 0 || b.battLow > 100 {
		ps.Add("battery_low", "%v must be a percentage", b.battLow)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return b, nil
}

// NewTuya builds a Tuya SOS button (TS0601_sos) through zigbee2mqtt: only
// action "emergency" is an alarm.
func NewTuya(d config.Device) (drivers.Device, []config.Problem) {
	b, ps := newBand(d)
	if len(ps) > 0 {
		return nil, ps
	}
	b.sosActions = []string{"emergency"}
	b.fields = z2mFields
	b.avail = &kit.Availability{}
	return b, nil
}

// NewZigbee2MQTT builds a generic zigbee2mqtt wearable.
func NewZigbee2MQTT(d config.Device) (drivers.Device, []config.Problem) {
	b, ps := newBand(d)
	if len(ps) > 0 {
		return nil, ps
	}
	b.sosActions = []string{"emergency", "sos", "panic"}
	b.fields = z2mFields
	b.avail = &kit.Availability{}
	return b, nil
}

// NewTheengs builds a Xiaomi band decoded by Theengs/OpenMQTTGateway
// (BTtoMQTT); it has heart rate and battery, no buttons.
func NewTheengs(d config.Device) (drivers.Device, []config.Problem) {
	b, ps := newBand(d)
	if len(ps) > 0 {
		return nil, ps
	}
	b.fields = fields{bpm: []string{"act_bpm", "heart_rate"}, battery: []string{"batt", "battery"}}
	return b, nil
}

// Topics is the state topic and, for zigbee2mqtt dialects, availability.
func (b *Band) Topics() []string {
	if b.avail != nil {
		return []string{b.topic, b.topic + kit.AvailabilitySuffix}
	}
	return []string{b.topic}
}

// reading is what one payload says; nil means absent.
type reading struct {
	action     string
	fall       *bool
	bpm        *float64
	battery    *float64
	batteryLow *bool
	lat, lon   *float64
}

// Handle parses one message; a wrong field type yields an error, no events
// and no state change.
func (b *Band) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	if evs, ok, err := b.avail.Route(m, o, b.topic, "wristband", b.id); ok {
		return evs, err
	}
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("wristband %s: %w", b.id, err)
	}
	r, err := b.parse(obj)
	if err != nil {
		return nil, fmt.Errorf("wristband %s: %w", b.id, err)
	}
	return b.apply(r, o), nil
}

func (b *Band) parse(obj map[string]any) (reading, error) {
	var r reading
	var errs kit.Errs
	if s, ok, err := kit.String(obj, "action"); ok {
		r.action = strings.ToLower(strings.TrimSpace(s))
	} else {
		errs.Keep(err)
	}
	for _, f := range []string{"fall", "fall_detected"} {
		if v, ok, err := kit.Flag(obj, f); ok {
			if r.fall == nil || v {
				r.fall = &v
			}
		} else {
			errs.Keep(err)
		}
	}
	r.bpm = first(obj, b.fields.bpm, &errs)
	r.battery = first(obj, b.fields.battery, &errs)
	if v, ok, err := kit.Flag(obj, "battery_low"); ok {
		r.batteryLow = &v
	} else {
		errs.Keep(err)
	}
	errs.Keep(parseLocation(obj, &r))
	if r.bpm != nil && (*r.bpm < 0 || *r.bpm > 400) {
		errs.Keep(fmt.Errorf("%w: heart rate %v is not a plausible bpm", drivers.ErrWrongType, *r.bpm))
	}
	return r, errs.Err()
}

func first(obj map[string]any, names []string, errs *kit.Errs) *float64 {
	for _, n := range names {
		v, ok, err := kit.Number(obj, n)
		errs.Keep(err)
		if ok {
			return &v
		}
	}
	return nil
}

// parseLocation reads "location": {lat|latitude, lon|lng|longitude} or
// top-level latitude + longitude.
func parseLocation(obj map[string]any, r *reading) error {
	src := obj
	if raw, ok := kit.Get(obj, "location"); ok {
		m, isObj := raw.(map[string]any)
		if !isObj {
			return kit.WrongType("location", raw, "an object with lat and lon")
		}
		src = m
	}
	var errs kit.Errs
	pick := func(names ...string) *float64 {
		for _, n := range names {
			v, ok, err := kit.Number(src, n)
			errs.Keep(err)
			if ok {
				return &v
			}
		}
		return nil
	}
	lat, lon := pick("lat", "latitude"), pick("lon", "lng", "longitude")
	if err := errs.Err(); err != nil {
		return err
	}
	if lat == nil || lon == nil {
		return nil // a half position is no position
	}
	if *lat < -90 || *lat > 90 || *lon < -180 || *lon > 180 {
		return fmt.Errorf("%w: position %v,%v is out of range", drivers.ErrWrongType, *lat, *lon)
	}
	r.lat, r.lon = lat, lon
	return nil
}

func (b *Band) apply(r reading, o event.Origin) []*event.Event {
	if r.bpm != nil && *r.bpm > 0 {
		b.bpm = r.bpm
	}
	if r.battery != nil {
		b.bat = r.battery
	}
	if r.lat != nil {
		b.lat, b.lon = r.lat, r.lon
	}
	var evs []*event.Event
	add := func(typ string, sev event.Severity, extra map[string]any) {
		evs = append(evs, kit.Event(o, typ, sev, b.data(extra)))
	}
	if slices.Contains(b.sosActions, r.action) {
		// A press may arrive as several reports; one alarm per debounce window.
		if b.lastSOS.IsZero() || o.Time.Sub(b.lastSOS) >= b.sosDebounce || o.Time.Before(b.lastSOS) {
			extra := map[string]any{"action": r.action}
			if r.battery != nil && *r.battery == 0 {
				// _TZE284_2baujqot sends "emergency" with battery 0 without a
				// press (z2m#31821); still an alarm, marked for the guard.
				extra["suspect"] = true
			}
			add(event.WristbandSOS, "", extra)
		}
		b.lastSOS = o.Time
	}
	fell := r.action == "fall"
	if r.fall != nil {
		if rose, _ := b.fall.Set(*r.fall); rose {
			fell = true
		}
	}
	if fell {
		add(event.WristbandFall, "", nil)
	}
	// 0 bpm means "not measured" (Theengs sends act_bpm 0 between readings).
	if r.bpm != nil && *r.bpm > 0 {
		sev := b.hrSeverity(*r.bpm)
		if sev != "" && sev.Rank() > b.hrSev.Rank() {
			add(event.WristbandHR, sev, map[string]any{"bpm": *r.bpm, "hr_low": b.hrLow, "hr_high": b.hrHigh})
		}
		if sev == "" || sev.Rank() > b.hrSev.Rank() {
			b.hrSev = sev
		}
	}
	low := r.batteryLow != nil && *r.batteryLow
	if r.battery != nil && *r.battery <= b.battLow {
		low = true
	}
	if r.batteryLow != nil || r.battery != nil {
		if rose, _ := b.lowBatt.Set(low); rose {
			extra := map[string]any{}
			if r.battery != nil {
				extra["battery"] = *r.battery
			}
			add(event.WristbandBatt, "", extra)
		}
	}
	return evs
}

// hrSeverity is "" in range, warning outside, critical far outside.
func (b *Band) hrSeverity(bpm float64) event.Severity {
	switch {
	case bpm < b.hrLow-10 || bpm > b.hrHigh+30:
		return event.Critical
	case bpm < b.hrLow || bpm > b.hrHigh:
		return event.Warning
	}
	return ""
}

// Facts name the wearer on events the gateway raises for a silent band.
func (b *Band) Facts() map[string]any {
	if b.wearer == "" {
		return nil
	}
	return map[string]any{"wearer": b.wearer}
}

func (b *Band) data(extra map[string]any) map[string]any {
	d := map[string]any{}
	if b.wearer != "" {
		d["wearer"] = b.wearer
	}
	if b.lat != nil {
		d["lat"], d["lon"] = *b.lat, *b.lon
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}
