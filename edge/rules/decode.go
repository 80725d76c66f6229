package rules

import (
	"bytes"
	"cmp"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/schedule"
)

// Rule is one decoded rule.
type Rule struct {
	Name      string
	When      Match
	Correlate *Correlate
	Debounce  time.Duration
	Suppress  schedule.Set
	Then      []Action
}

// Match selects events; zero fields match everything.
type Match struct {
	Types       []string // exact "gas.leak", prefix "gas.", glob "wristband.*"
	MinSeverity event.Severity
	Location    event.Location // zone is compared with the event's zone (data.zone, else location.zone)
	SourceKind  string
	SourceID    string // exact, or a glob such as "fence-north-*"
}

// Correlate makes a rule fire only when an event matching After came
// within Within of the triggering one, with the same value of Same.
type Correlate struct {
	After  Match
	Within time.Duration
	Same   string // zone, building, unit, room, source or none
}

// Action kinds.
const (
	ActPublish    = "publish"
	ActCloseValve = "close_valve"
	ActOpenGate   = "open_gate"
	ActSiren      = "siren"
	ActRaiseAlarm = "raise_alarm"
)

// actionKinds maps a device action to the device kind it commands and the
// command it sends (siren: from state).
var actionKinds = map[string]struct{ kind, command string }{
	ActCloseValve: {"gas_valve", "close"},
	ActOpenGate:   {"barrier_gate", "open"},
	ActSiren:      {"siren", ""},
}

// Action is one thing a rule does.
type Action struct {
	Kind string
	// publish
	Topic, Payload *template.Template // Payload nil = the event as JSON
	QoS            byte
	Retain         bool
	// close_valve, open_gate, siren
	Devices []string
	Same    string // building, unit, room, zone: every actuator of the kind at the event's place
	State   string // siren: on or off
	// raise_alarm
	Severity event.Severity
	Key      *template.Template // nil = the alarm manager's default key
	Assign   string             // a guard the alarm is assigned to ("" = none)
}

var sameValues = []string{"zone", "building", "unit", "room", "source", "none"}
var placeValues = []string{"building", "unit", "room", "zone"}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Check validates the top-level rules: key for config.Load, so
// `warden check-config` names the key path and line of a bad rule.
func Check(c *config.Config) []config.Problem {
	_, ps := Parse(c.Rules, c.Devices)
	return ps
}

// Parse decodes rules strictly and checks what they mean; every problem
// names its key path, e.g. "rules[2].then[0].topic", and all are reported
// at once. Devices are the configured devices that action targets are
// checked against.
func Parse(raw []*config.Section, devices []config.Device) ([]Rule, []config.Problem) {
	d := &decoder{devices: map[string]config.Device{}, commands: drivers.Default.CommandSpace(devices)}
	for _, dv := range devices {
		d.devices[dv.ID] = dv
	}
	var out []Rule
	names := map[string]string{}
	for i, sec := range raw {
		p := fmt.Sprintf("rules[%d]", i)
		if sec == nil {
			d.add(p, "is empty; want a mapping")
			continue
		}
		before := len(d.ps)
		var sp spec
		for _, e := range sec.DecodeAll(p, &sp) {
			d.add(e.Key, "%s", e.Msg)
		}
		rule := d.rule(&sp, p)
		if prev, dup := names[rule.Name]; dup {
			d.add(p+".name", "duplicate rule name %q (also %s)", rule.Name, prev)
		} else if rule.Name != "" {
			names[rule.Name] = p
		}
		if len(d.ps) == before {
			out = append(out, rule)
		}
	}
	return out, d.ps
}

type decoder struct {
	devices  map[string]config.Device
	commands *drivers.CommandSpace
	ps       []config.Problem
}

func (d *decoder) add(key, f string, a ...any) {
	d.ps = append(d.ps, config.Problem{Key: key, Msg: fmt.Sprintf(f, a...)})
}

// has reports whether key already has a problem (a wrong type need not
// also be "required").
func (d *decoder) has(key string) bool {
	return slices.ContainsFunc(d.ps, func(p config.Problem) bool { return p.Key == key })
}

func (d *decoder) rule(sp *spec, p string) Rule {
	r := Rule{Name: sp.Name}
	switch {
	case r.Name == "":
		d.add(p+".name", "is required")
	case !nameRe.MatchString(r.Name):
		d.add(p+".name", "%q must be letters, digits, '-', '_' or '.' (it is a metric label)", r.Name)
	}
	if sp.When != nil {
		r.When = d.match(sp.When, p+".when")
	} else {
		d.add(p+".when", "is required (use when: {type: \"*\"} to match every event)")
	}
	if sp.Correlate != nil {
		r.Correlate = d.correlate(sp.Correlate, p+".correlate")
	}
	if sp.Debounce != nil { // given, it must be positive (0s is a mistake, not "none")
		if r.Debounce = sp.Debounce.D(); r.Debounce <= 0 {
			d.add(p+".debounce", "%v is not a positive duration like 30s or 5m", r.Debounce)
		}
	}
	r.Suppress = d.windows(sp.Suppress, p+".suppress")
	if len(sp.Then) == 0 && !d.has(p+".then") {
		d.add(p+".then", "is required: a list of actions")
	}
	for i := range sp.Then {
		if act, ok := d.action(&sp.Then[i], fmt.Sprintf("%s.then[%d]", p, i)); ok {
			r.Then = append(r.Then, act)
		}
	}
	return r
}

func (d *decoder) match(sp *matchSpec, p string) Match {
	var m Match
	for i, t := range sp.Type.Items {
		if err := checkTypePattern(t); err != nil {
			d.add(sp.Type.key(p+".type", i), "%v", err)
			continue
		}
		m.Types = append(m.Types, t)
	}
	if s := sp.Severity; s != "" {
		m.MinSeverity = event.Severity(s)
		if !m.MinSeverity.Valid() {
			d.add(p+".severity", "%q is not info, warning or critical", s)
		}
	}
	if l := sp.Location; l != nil {
		m.Location = event.Location{Building: string(l.Building), Unit: string(l.Unit), Room: string(l.Room), Zone: string(l.Zone)}
	}
	if so := sp.Source; so != nil {
		m.SourceKind, m.SourceID = so.Kind, so.ID
		if _, err := path.Match(m.SourceID, ""); err != nil {
			d.add(p+".source.id", "bad pattern %q: %v", m.SourceID, err)
		}
	}
	return m
}

func checkTypePattern(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("is empty")
	case strings.ContainsAny(t, "*?["):
		if _, err := path.Match(t, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %v", t, err)
		}
	case strings.HasSuffix(t, "."):
		for _, k := range event.Types() {
			if strings.HasPrefix(k, t) {
				return nil
			}
		}
		return fmt.Errorf("no event type starts with %q", t)
	case !event.Known(t):
		return fmt.Errorf("%q is not an event type (see docs/events.md); use \"gas.\" for a prefix or \"gas.*\" for a glob", t)
	}
	return nil
}

func (d *decoder) correlate(sp *correlateSpec, p string) *Correlate {
	c := &Correlate{Same: "zone", Within: sp.Within.D()}
	if sp.After != nil {
		c.After = d.match(sp.After, p+".after")
	} else {
		d.add(p+".after", "is required: the event that must come first, e.g. {type: perimeter.intrusion}")
	}
	if c.Within <= 0 {
		d.add(p+".within", "is required: a positive duration, e.g. 60s")
	}
	if s := sp.Same; s != "" {
		c.Same = s
		if !slices.Contains(sameValues, s) {
			d.add(p+".same", "%q is not one of %s", s, strings.Join(sameValues, ", "))
		}
	}
	return c
}

func (d *decoder) windows(sp oneOrMany[when_], p string) schedule.Set {
	var set schedule.Set
	for i, it := range sp.Items {
		var w schedule.Window
		var err error
		if it.Mapping {
			w, err = schedule.New(it.Days, it.From, it.To)
		} else {
			w, err = schedule.Parse(it.Text)
		}
		if err != nil {
			d.add(sp.key(p, i), "%v", err)
			continue
		}
		set = append(set, w)
	}
	return set
}

func (d *decoder) action(sp *actionSpec, p string) (Action, bool) {
	a := Action{Kind: sp.Action}
	before := len(d.ps)
	keys, known := keysOf[a.Kind]
	switch {
	case a.Kind == "":
		d.add(p+".action", "is required: one of publish, close_valve, open_gate, siren, raise_alarm")
		return a, false // the other keys mean nothing without an action
	case !known:
		d.add(p+".action", "%q is not one of publish, close_valve, open_gate, siren, raise_alarm", a.Kind)
		return a, false
	}
	for _, k := range sp.set() {
		if !slices.Contains(keys, k) {
			d.add(p+"."+k, "is not a key of %s (%s)", a.Kind, strings.Join(keys, ", "))
		}
	}
	switch a.Kind {
	case ActPublish:
		a.Topic = d.template(sp.Topic, p+".topic", true)
		a.Payload = d.template(sp.Payload, p+".payload", false)
		a.QoS = 1
		if q := sp.QoS; q != nil {
			if *q < 0 || *q > 2 {
				d.add(p+".qos", "%d is not 0, 1 or 2", *q)
			}
			a.QoS = byte(*q)
		}
		a.Retain = sp.Retain
		if a.Topic != nil && !strings.Contains(a.Topic.Root.String(), "{{") {
			if t := a.Topic.Root.String(); strings.ContainsAny(t, "+#") {
				d.add(p+".topic", "%q must be a plain topic, not a filter", t)
			} else if d.commands.Actuator(t) {
				d.add(p+".topic", "%q commands an actuator or speaks for the gateway: use close_valve, siren or open_gate (no rule may open a valve)", t)
			}
		}
	case ActCloseValve, ActOpenGate, ActSiren:
		kind := actionKinds[a.Kind].kind
		a.Devices, a.Same = sp.Devices.Items, sp.Same
		if a.Same != "" && !slices.Contains(placeValues, a.Same) {
			d.add(p+".same", "%q is not one of %s", a.Same, strings.Join(placeValues, ", "))
		}
		if len(a.Devices) == 0 && a.Same == "" {
			d.add(p, "%s needs devices: [ids] or same: building|unit|room|zone", a.Kind)
		}
		for i, id := range a.Devices {
			k := sp.Devices.key(p+".devices", i)
			switch dev, ok := d.devices[id]; {
			case !ok:
				d.add(k, "no device has id %q", id)
			case dev.Kind != kind:
				d.add(k, "device %q is a %s, not a %s", id, dev.Kind, kind)
			}
		}
		if a.Kind == ActSiren {
			a.State = cmp.Or(string(sp.State), "on")
			if a.State != "on" && a.State != "off" {
				d.add(p+".state", "%q is not on or off", a.State)
			}
		}
	case ActRaiseAlarm:
		if s := sp.Severity; s != "" {
			a.Severity = event.Severity(s)
			if !a.Severity.Valid() {
				d.add(p+".severity", "%q is not info, warning or critical", s)
			}
		}
		a.Key = d.template(sp.Key, p+".key", false)
		a.Assign = strings.TrimSpace(sp.Assign)
		if len(a.Assign) > 64 {
			d.add(p+".assign", "%q is longer than 64 bytes", a.Assign)
		}
	}
	return a, len(d.ps) == before
}

// template parses a text/template and runs it once on a sample event, so a
// misspelt field fails at load and not when the event comes.
func (d *decoder) template(src, key string, required bool) *template.Template {
	if src == "" {
		if required {
			d.add(key, "is required")
		}
		return nil
	}
	t, err := template.New(key).Funcs(funcs).Option("missingkey=zero").Parse(src)
	if err != nil {
		d.add(key, "template: %v", cleanTemplateErr(err, key))
		return nil
	}
	if err := t.Execute(&bytes.Buffer{}, sampleView()); err != nil {
		d.add(key, "template: %v", cleanTemplateErr(err, key))
		return nil
	}
	return t
}

func cleanTemplateErr(err error, name string) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "template: "), name+":")
}

func sampleView() *View {
	e := event.New(event.Origin{Gateway: "gw", Site: "site", Source: event.Source{Kind: "k", ID: "id"},
		Time: time.Unix(0, 0)}, event.GasLeak, map[string]any{})
	return &View{Event: *e, Rule: "rule", Zone: "zone", Related: e}
}
