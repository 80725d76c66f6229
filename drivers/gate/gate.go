// Package gate reads licence-plate cameras at barrier gates (kind
// barrier_gate) and builds the barrier's open/close commands. It reports
// every vehicle with decision "pending"; the allow-list decision is made by
// the gate logic, which rewrites it.
package gate

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind these drivers serve.
const Kind = "barrier_gate"

//go:embed sample.yaml
var sample []byte

func init() {
	drivers.Register(drivers.Driver{Kind: Kind, Name: "hikvision", New: NewHikvision, Options: options{}, Sample: sample})
	drivers.Register(drivers.Driver{Kind: Kind, Name: "generic", New: NewGeneric, Options: options{}, Sample: sample})
}

// options are a gate's keys (both drivers).
type options struct {
	CommandTopic *string           `yaml:"command_topic"` // default <topic>/set
	Direction    string            `yaml:"direction"`     // a one-way lane's fixed in or out
	DirectionMap map[string]string `yaml:"direction_map"` // payload direction → in/out
}

// MaxPlate bounds a plate in bytes; real plates are under 16 characters.
const MaxPlate = 32

// Decision a driver puts in gate.vehicle.
const DecisionPending = "pending"

// Gate is one configured plate camera and barrier.
type Gate struct {
	id, topic, cmdTopic string
	direction           string            // fixed direction of the lane, "" = from payload
	dirMap              map[string]string // payload direction → in/out
	parse               func(obj map[string]any) (plateReading, bool, error)
	fault               kit.Edge
}

type plateReading struct {
	plate      string
	direction  string // raw, before mapping
	confidence *float64
	color      string  // plate colour: blue, yellow, white, black, green, other; "" unknown
	fault      *string // "" no fault
	pictures   []event.Attachment
	pictureErr string // a picture sent but unusable: the read goes on without it
}

// plateColors are the colour names of data.plate_color.
var plateColors = map[string]bool{"blue": true, "yellow": true, "white": true, "black": true, "green": true, "other": true}

var (
	_ drivers.Device    = (*Gate)(nil)
	_ drivers.Commander = (*Gate)(nil)
)

// newGate builds a gate from its keys; defMap maps payload directions
// when direction_map is not given.
func newGate(d config.Device, defMap map[string]string) (*Gate, []config.Problem) {
	var o options
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	g := &Gate{id: d.ID, topic: d.Topic, cmdTopic: d.Topic + "/set", direction: o.Direction, dirMap: defMap}
	if o.CommandTopic != nil {
		g.cmdTopic = *o.CommandTopic
	}
	var ps kit.Problems
	if g.direction != "" && g.direction != "in" && g.direction != "out" {
		ps.Add("direction", "%q is not in or out", g.direction)
	}
	if g.cmdTopic == "" || strings.ContainsAny(g.cmdTopic, "+#") {
		ps.Add("command_topic", "%q must be a plain topic", g.cmdTopic)
	}
	if o.DirectionMap != nil {
		g.dirMap = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(o.DirectionMap)) {
			if v := o.DirectionMap[k]; v == "in" || v == "out" {
				g.dirMap[k] = v
			} else {
				ps.Add("direction_map."+k, "wrong value: %q, want \"in\" or \"out\"", v)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}

// Topics is the camera's result topic.
func (g *Gate) Topics() []string { return []string{g.topic} }

// Handle turns one plate result into gate.vehicle (and gate.fault when the
// shape carries a fault).
func (g *Gate) Handle(m drivers.Message, o event.Origin) ([]*event.Event, error) {
	o = kit.Stamp(o, m)
	obj, err := kit.Object(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.id, err)
	}
	r, ok, err := g.parse(obj)
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.id, err)
	}
	if err := checkPlate(r.plate); err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.id, err)
	}
	var evs []*event.Event
	if r.fault != nil {
		if rose, _ := g.fault.Set(*r.fault != ""); rose {
			evs = append(evs, kit.Event(o, event.GateFault, "", map[string]any{"reason": *r.fault}))
		}
	}
	if ok {
		dir := g.direction
		if dir == "" {
			dir = g.dirMap[r.direction]
		}
		if dir == "" {
			dir = "unknown"
		}
		e := event.NewGateVehicle(o, r.plate, dir, DecisionPending)
		if r.direction != "" {
			e.Data["direction_raw"] = r.direction
		}
		if r.confidence != nil {
			e.Data["confidence"] = *r.confidence
		}
		if r.color != "" {
			e.Data["plate_color"] = r.color
		}
		e.Attachments = r.pictures
		if r.pictureErr != "" {
			e.Data["picture_error"] = r.pictureErr
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// colorName reads a plate colour given by name (case-insensitive).
func colorName(obj map[string]any, field string) (string, error) {
	c, _, err := kit.String(obj, field)
	c = strings.ToLower(strings.TrimSpace(c))
	if err != nil || c == "" || c == "unknown" {
		return "", err
	}
	if !plateColors[c] {
		return "other", nil
	}
	return c, nil
}

func checkPlate(p string) error {
	if len(p) > MaxPlate {
		return fmt.Errorf("%w: plate is %d bytes, over %d", drivers.ErrWrongType, len(p), MaxPlate)
	}
	if !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: plate %q has invalid characters", drivers.ErrWrongType, p)
	}
	return nil
}

// Command returns the barrier message for "open" or "close":
// {"command":"open"} on command_topic (default <topic>/set).
func (g *Gate) Command(action string) (string, []byte, error) {
	if action != "open" && action != "close" {
		return "", nil, fmt.Errorf("gate %s: unknown command %q (want open or close)", g.id, action)
	}
	b, err := json.Marshal(map[string]string{"command": action})
	return g.cmdTopic, b, err
}

// NewGeneric builds a gate for {"plate":"…","direction":"in|out",
// "confidence":0.93,"fault":"…"}.
func NewGeneric(d config.Device) (drivers.Device, []config.Problem) {
	g, ps := newGate(d, map[string]string{"in": "in", "out": "out"})
	if len(ps) > 0 {
		return nil, ps
	}
	g.parse = parseGeneric
	return g, nil
}

func parseGeneric(obj map[string]any) (plateReading, bool, error) {
	var r plateReading
	var errs kit.Errs
	plate, hasPlate, err := kit.String(obj, "plate")
	errs.Keep(err)
	r.plate = strings.TrimSpace(plate)
	dir, _, err := kit.String(obj, "direction")
	errs.Keep(err)
	r.direction = strings.ToLower(dir)
	if v, ok, err := kit.Number(obj, "confidence"); ok {
		r.confidence = &v
	} else {
		errs.Keep(err)
	}
	r.color, err = colorName(obj, "plate_color")
	errs.Keep(err)
	r.pictures, r.pictureErr = pictures(obj, "image", "plate_image")
	if raw, ok := kit.Get(obj, "fault"); ok {
		switch f := raw.(type) {
		case bool:
			reason := ""
			if f {
				reason = "fault"
			}
			r.fault = &reason
		case string:
			s, _, err := kit.String(obj, "fault")
			errs.Keep(err)
			r.fault = &s
		default:
			errs.Keep(kit.WrongType("fault", raw, "a boolean or a string"))
		}
	}
	if err := errs.Err(); err != nil {
		return plateReading{}, false, err
	}
	if !hasPlate && r.fault == nil {
		return r, false, fmt.Errorf("%w: neither \"plate\" nor \"fault\"", drivers.ErrBadPayload)
	}
	return r, hasPlate, nil
}

// pictures reads the scene and plate pictures a camera sent as base64
// JPEG. A bad one is left out and described, never a reason to drop the
// plate read: the barrier must still open for a resident.
func pictures(obj map[string]any, sceneField, plateField string) ([]event.Attachment, string) {
	var out []event.Attachment
	var bad []string
	for _, f := range []struct{ field, kind string }{{sceneField, "snapshot"}, {plateField, "crop"}} {
		raw, ok := kit.Get(obj, f.field)
		if !ok {
			continue
		}
		s, isStr := raw.(string)
		if !isStr {
			bad = append(bad, fmt.Sprintf("%s: %s, want base64 JPEG", f.field, kit.Describe(raw)))
			continue
		}
		if s == "" {
			continue
		}
		if i := strings.Index(s, ";base64,"); i >= 0 && strings.HasPrefix(s, "data:") {
			s = s[i+len(";base64,"):]
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
			bad = append(bad, f.field+": not a base64 JPEG")
			continue
		}
		out = append(out, event.Attachment{Kind: f.kind, ContentType: "image/jpeg", Data: b})
	}
	return out, strings.Join(bad, "; ")
}
