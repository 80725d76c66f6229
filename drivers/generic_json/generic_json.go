// Package genericjson (folder generic_json) lets an installer add a vendor without code: a
// config "map" says which event a JSON payload means, when, and which
// fields go into data. It is registered for every device kind.
package genericjson

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Driver is the driver name, the same for every kind.
const Driver = "generic_json"

// MaxDataBytes bounds one copied object or array value.
const MaxDataBytes = 4096

//go:embed sample.yaml
var sample []byte

func init() {
	for _, k := range config.DeviceKinds {
		drivers.Register(drivers.Driver{Kind: k, Name: Driver, New: New, Options: options{}, Sample: sample})
	}
}

// options are the one key, map.
type options struct {
	Map *mapOptions `yaml:"map"`
}

type mapOptions struct {
	Type      string         `yaml:"type"`       // fixed event type, or
	TypeField string         `yaml:"type_field"` // the payload field holding it
	Severity  string         `yaml:"severity"`   // default the type's
	When      *whenOptions   `yaml:"when"`       // only when field equals
	OnChange  *bool          `yaml:"on_change"`  // with when: only when it turns true (default true)
	Data      map[string]any `yaml:"data"`       // event data name → dotted payload path
}

type whenOptions struct {
	Field  string `yaml:"field"`
	Equals any    `yaml:"equals"`
}

// Mapper is one configured generic_json device.
type Mapper struct {
	id, topic string
	typ       string // fixed type, or "" to read typeField
	typeField string
	severity  event.Severity
	whenField string
	equals    any
	onChange  bool
	data      []outField
	edge      kit.Edge
}

type outField struct{ name, path string }

// New builds a device from its "map" key:
//
//	map:
//	  type: perimeter.intrusion          # fixed event type, or
//	  type_field: event.kind             # payload field holding the type
//	  severity: critical                 # optional, default the type's
//	  when: {field: alarm, equals: true} # optional condition
//	  on_change: true                    # with when: only when it turns true (default true)
//	  data: {zone: "site.zone", bpm: "vitals.hr"}
func New(d config.Device) (drivers.Device, []config.Problem) {
	var o options
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	var ps kit.Problems
	m := o.Map
	if m == nil {
		ps.Add("map", "is required for driver generic_json")
		return nil, ps
	}
	g := &Mapper{id: d.ID, topic: d.Topic, typ: m.Type, typeField: m.TypeField, severity: event.Severity(m.Severity), onChange: true}
	switch {
	case g.typ == "" && g.typeField == "":
		ps.Add("map.type", "one of type or type_field is required")
	case g.typ != "" && g.typeField != "":
		ps.Add("map.type_field", "give type or type_field, not both")
	case g.typ != "" && !event.Known(g.typ):
		ps.Add("map.type", "%q is not a known event type", g.typ)
	}
	if g.severity != "" && !g.severity.Valid() {
		ps.Add("map.severity", "%q is not info, warning or critical", g.severity)
	}
	if w := m.When; w != nil {
		g.whenField = w.Field
		if g.whenField == "" {
			ps.Add("map.when.field", "is required")
		}
		if w.Equals == nil {
			ps.Add("map.when.equals", "is required")
		} else if g.equals = scalar(w.Equals); g.equals == nil {
			ps.Add("map.when.equals", "wrong type: %s, want a string, number or boolean", kit.Describe(w.Equals))
		}
	}
	if m.OnChange != nil {
		g.onChange = *m.OnChange
	}
	for name, p := range m.Data {
		path, ok := p.(string)
		if !ok || path == "" {
			ps.Add("map.data."+name, "wrong type: %s, want a dotted field path", kit.Describe(p))
			continue
		}
		g.data = append(g.data, outField{name, path})
	}
	sort.Slice(g.data, func(i, j int) bool { return g.data[i].name < g.data[j].name })
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}

// scalar normalises a config or payload value for comparison: numbers to
// float64; nil for anything that is not a string, number or boolean.
func scalar(v any) any {
	if f, ok := kit.ToFloat(v); ok {
		return f
	}
	switch v.(type) {
	case string, bool:
		return v
	}
	return nil
}

// Topics is the configured topic.
func (g *Mapper) Topics() []string { return []string{g.topic} }

// Handle maps one payload. With a when condition, a payload that does not
// meet it yields nothing; with on_change, only the payload that makes it
// true yields an event.
func (g *Mapper) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("generic_json %s: %w", g.id, err)
	}
	match := true
	if g.whenField != "" {
		v, ok := kit.Get(obj, g.whenField)
		match = ok && scalar(v) == g.equals
		if !match {
			g.edge.Set(false)
			return nil, nil
		}
	}
	typ := g.typ
	if typ == "" {
		s, ok, err := kit.String(obj, g.typeField)
		if err != nil {
			return nil, fmt.Errorf("generic_json %s: %w", g.id, err)
		}
		if !ok {
			return nil, fmt.Errorf("generic_json %s: %w: no %q", g.id, drivers.ErrBadPayload, g.typeField)
		}
		if !event.Known(s) {
			return nil, fmt.Errorf("generic_json %s: %w: %q is not a known event type", g.id, drivers.ErrWrongType, s)
		}
		typ = s
	}
	data := map[string]any{}
	for _, f := range g.data {
		v, ok := kit.Get(obj, f.path)
		if !ok {
			continue
		}
		switch x := v.(type) {
		case string:
			if len(x) > kit.MaxString {
				return nil, fmt.Errorf("generic_json %s: %w: %q is a %d-byte string, over %d", g.id, drivers.ErrWrongType, f.path, len(x), kit.MaxString)
			}
		case map[string]any, []any:
			if b, _ := json.Marshal(x); len(b) > MaxDataBytes {
				return nil, fmt.Errorf("generic_json %s: %w: %q is %d bytes, over %d", g.id, drivers.ErrWrongType, f.path, len(b), MaxDataBytes)
			}
		}
		data[f.name] = v
	}
	if g.whenField != "" {
		if rose, _ := g.edge.Set(true); !rose && g.onChange {
			return nil, nil
		}
	}
	e, err := event.Make(o, typ, g.severity, data)
	if err != nil {
		return nil, fmt.Errorf("generic_json %s: %w: %v", g.id, drivers.ErrWrongType, err)
	}
	return []*event.Event{e}, nil
}
