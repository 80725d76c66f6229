// Package gas reads gas detectors (kind gas_detector) and turns their
// reports into gas.leak / gas.cleared on transitions, plus device health
// events. The three drivers share one state machine and differ only in how a
// payload becomes a reading.
package gas

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind these drivers serve.
const Kind = "gas_detector"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "zigbee2mqtt", New: NewZigbee2MQTT, Options: z2mOptions{}, Sample: sample})
	drivers.Register(drivers.Driver{Kind: Kind, Name: "gateway3", New: NewGateway3, Options: gateway3Options{}, Sample: sample})
	drivers.Register(drivers.Driver{Kind: Kind, Name: "generic", New: NewGeneric, Options: genericOptions{}, Sample: sample})
}

// Options are the keys every gas driver has.
type Options struct {
	Valve       kit.Strings `yaml:"valve"`        // valves the interlock closes on a leak
	Siren       kit.Strings `yaml:"siren"`        // sirens it sounds
	WarnLEL     float64     `yaml:"warn_lel"`     // %LEL of a warning
	CriticalLEL float64     `yaml:"critical_lel"` // %LEL of a critical leak
}

type z2mOptions struct {
	Options     `yaml:",inline"`
	DensityUnit string `yaml:"density_unit"` // raw or lel
}

type gateway3Options struct {
	Options `yaml:",inline"`
	DID     string `yaml:"did"` // the lumi.… id on the gateway's shared topic
}

type genericOptions struct {
	Options  `yaml:",inline"`
	GasField string `yaml:"gas_field"` // dotted path of the alarm flag
	LELField string `yaml:"lel_field"` // dotted path of the %LEL value
}

func defaults() Options { return Options{WarnLEL: DefaultWarnLEL, CriticalLEL: DefaultCriticalLEL} }

// Defaults of the thresholds, in % of the lower explosive limit.
const (
	DefaultWarnLEL     = 10
	DefaultCriticalLEL = 25
)

// level is the gas state; unknown before the first report that says.
type level int8

const (
	unknown level = iota
	clear
	warning
	critical
)

// reading is what one payload says; nil pointers mean "not in this payload".
type reading struct {
	alarm      *bool    // the detector's own alarm decision
	lel        *float64 // concentration in %LEL
	density    *float64 // concentration in device units (not %LEL)
	tamper     *bool
	batteryLow *bool
	fault      *string // "" = no fault, else the reason
}

// Detector is one configured gas detector.
type Detector struct {
	id, topic      string
	valves, sirens []string
	warn, crit     float64
	parse          func(obj map[string]any) (reading, bool, error)
	avail          *kit.Availability // nil when the protocol has none

	level                      level
	tamper, battLow, faultEdge kit.Edge
}

// common builds the detector from the keys every gas driver shares.
func common(d config.Device, o Options) (*Detector, kit.Problems) {
	g := &Detector{id: d.ID, topic: d.Topic, valves: o.Valve, sirens: o.Siren, warn: o.WarnLEL, crit: o.CriticalLEL}
	var ps kit.Problems
	if g.warn <= 0 || g.warn > 100 {
		ps.Add("warn_lel", "%v must be in (0, 100] %%LEL", g.warn)
	}
	if g.crit <= 0 || g.crit > 100 {
		ps.Add("critical_lel", "%v must be in (0, 100] %%LEL", g.crit)
	} else if g.crit < g.warn {
		ps.Add("critical_lel", "%v is below warn_lel %v", g.crit, g.warn)
	}
	return g, ps
}

// Links are the valves the interlock closes and the sirens it sounds.
func (g *Detector) Links() []drivers.Link {
	return []drivers.Link{{Key: "valve", Kind: "gas_valve", IDs: g.valves}, {Key: "siren", Kind: "siren", IDs: g.sirens}}
}

// Topics is the state topic and, for zigbee2mqtt, its availability topic.
func (g *Detector) Topics() []string {
	if g.avail != nil {
		return []string{g.topic, g.topic + kit.AvailabilitySuffix}
	}
	return []string{g.topic}
}

// Handle parses one message. A payload with a field of the wrong type
// changes no state and yields no events.
func (g *Detector) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	if evs, ok, err := g.avail.Route(m, o, g.topic, "gas", g.id); ok {
		return evs, err
	}
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("gas %s: %w", g.id, err)
	}
	r, mine, err := g.parse(obj)
	if err != nil {
		return nil, fmt.Errorf("gas %s: %w", g.id, err)
	}
	if !mine {
		return nil, nil
	}
	return g.apply(r, o), nil
}

func (g *Detector) apply(r reading, o event.Origin) []*event.Event {
	var evs []*event.Event
	if lv := g.levelOf(r); lv != unknown {
		switch {
		case lv == clear:
			if g.level >= warning {
				evs = append(evs, kit.Event(o, event.GasCleared, "", g.data(r)))
			}
			g.level = clear
		case lv > g.level:
			// A first report that leaks (level unknown) alarms too: the
			// gateway may have restarted in the middle of a leak.
			sev := event.Warning
			if lv == critical {
				sev = event.Critical
			}
			evs = append(evs, kit.Event(o, event.GasLeak, sev, g.data(r)))
			g.level = lv
		}
		// lv below g.level while still leaking: the excursion keeps its
		// highest level until cleared, so a flapping reading cannot re-alarm.
	}
	if r.tamper != nil {
		if rose, _ := g.tamper.Set(*r.tamper); rose {
			evs = append(evs, kit.Event(o, event.DeviceTamper, "", nil))
		}
	}
	if r.batteryLow != nil {
		if rose, _ := g.battLow.Set(*r.batteryLow); rose {
			evs = append(evs, kit.Event(o, event.DeviceBattery, "", nil))
		}
	}
	if r.fault != nil {
		if rose, _ := g.faultEdge.Set(*r.fault != ""); rose {
			evs = append(evs, kit.Event(o, event.DeviceFault, "", map[string]any{"reason": *r.fault}))
		}
	}
	return evs
}

// levelOf combines the alarm flag and the concentration; unknown when the
// payload has neither.
func (g *Detector) levelOf(r reading) level {
	if r.alarm == nil && r.lel == nil {
		return unknown
	}
	switch {
	case r.alarm != nil && *r.alarm, r.lel != nil && *r.lel >= g.crit:
		return critical
	case r.lel != nil && *r.lel >= g.warn:
		return warning
	}
	return clear
}

func (g *Detector) data(r reading) map[string]any {
	d := map[string]any{"valves": list(g.valves), "sirens": list(g.sirens)}
	if r.lel != nil {
		d["lel_percent"] = *r.lel
	}
	if r.density != nil {
		d["gas_density"] = *r.density
	}
	return d
}

func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// NewZigbee2MQTT builds a zigbee2mqtt gas detector (HEIMAN, Xiaomi/Aqara,
// Tuya TS0601). Key density_unit says whether gas_density is in %LEL
// ("lel", Aqara JT-BZ-01AQ/A) or device units ("raw", the default: the
// Honeywell JTQJ-BF-01LM/BW reports 237 when idle).
func NewZigbee2MQTT(d config.Device) (drivers.Device, []config.Problem) {
	o := z2mOptions{Options: defaults(), DensityUnit: "raw"}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	g, ps := common(d, o.Options)
	g.avail = &kit.Availability{}
	unit := o.DensityUnit
	if unit != "raw" && unit != "lel" {
		ps.Add("density_unit", "%q is not raw or lel", unit)
	}
	g.parse = func(obj map[string]any) (reading, bool, error) {
		r, err := parseZ2M(obj, unit == "lel")
		return r, true, err
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}

func parseZ2M(obj map[string]any, densityIsLEL bool) (reading, error) {
	var r reading
	var errs kit.Errs
	if v, ok, err := kit.Flag(obj, "gas"); ok {
		r.alarm = &v
	} else {
		errs.Keep(err)
	}
	if v, ok, err := kit.Number(obj, "gas_value"); ok {
		r.lel = &v
	} else {
		errs.Keep(err)
	}
	if v, ok, err := kit.Number(obj, "gas_density"); ok {
		if densityIsLEL && r.lel == nil {
			r.lel = &v
		} else if !densityIsLEL {
			r.density = &v
		}
	} else {
		errs.Keep(err)
	}
	if v, ok, err := kit.Flag(obj, "tamper"); ok {
		r.tamper = &v
	} else {
		errs.Keep(err)
	}
	if v, ok, err := kit.Flag(obj, "battery_low"); ok {
		r.batteryLow = &v
	} else {
		errs.Keep(err)
	}
	if v, ok, err := kit.String(obj, "self_test_result"); ok {
		reason := ""
		switch strings.ToLower(v) {
		case "success", "ok", "checking", "":
		default:
			reason = "self_test_result: " + v
		}
		r.fault = &reason
	} else {
		errs.Keep(err)
	}
	return r, errs.Err()
}

// NewGeneric builds a detector for any JSON device with a boolean alarm
// field (gas_field, default "gas") and/or a %LEL field (lel_field, default
// "lel"). Field names may be dotted paths into nested objects.
func NewGeneric(d config.Device) (drivers.Device, []config.Problem) {
	o := genericOptions{Options: defaults(), GasField: "gas", LELField: "lel"}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	g, ps := common(d, o.Options)
	gasField, lelField := o.GasField, o.LELField
	if gasField == "" {
		ps.Add("gas_field", "is empty")
	}
	if lelField == "" {
		ps.Add("lel_field", "is empty")
	}
	g.parse = func(obj map[string]any) (reading, bool, error) {
		var r reading
		var errs kit.Errs
		if v, ok, err := kit.Flag(obj, gasField); ok {
			r.alarm = &v
		} else {
			errs.Keep(err)
		}
		if v, ok, err := kit.Number(obj, lelField); ok {
			r.lel = &v
		} else {
			errs.Keep(err)
		}
		return r, true, errs.Err()
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}
