package rules

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
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

// Parse strictly decodes rules; every problem names its key path, e.g.
// "rules[2].then[0].topic". Devices are the configured devices that action
// targets are checked against.
func Parse(raw []config.Rule, devices []config.Device) ([]Rule, []config.Problem) {
	d := &decoder{devices: map[string]config.Device{}, commands: drivers.Default.CommandSpace(devices)}
	for _, dv := range devices {
		d.devices[dv.ID] = dv
	}
	var out []Rule
	names := map[string]string{}
	for i, r := range raw {
		p := fmt.Sprintf("rules[%d]", i)
		before := len(d.ps)
		rule, ok := d.rule(map[string]any(r), p)
		if !ok {
			continue
		}
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

// obj reads a YAML mapping strictly: done reports every key not read.
type obj struct {
	d    *decoder
	m    map[string]any
	path string
	used map[string]bool
}

func (d *decoder) object(v any, p string) (*obj, bool) {
	switch m := v.(type) {
	case map[string]any:
		return &obj{d: d, m: m, path: p, used: map[string]bool{}}, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return &obj{d: d, m: out, path: p, used: map[string]bool{}}, true
	case nil:
		d.add(p, "is empty; want a mapping")
	case config.Rule: // yaml.v3 gives nested mappings the outer map's type
		return &obj{d: d, m: m, path: p, used: map[string]bool{}}, true
	default:
		d.add(p, "wrong type %s; want a mapping", typeName(v))
	}
	return nil, false
}

func (o *obj) key(k string) string { return o.path + "." + k }

func (o *obj) get(k string) (any, bool) {
	o.used[k] = true
	v, ok := o.m[k]
	return v, ok && v != nil
}

func (o *obj) done() {
	var extra []string
	for k := range o.m {
		if !o.used[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		o.d.add(o.key(k), "unknown key %q", k)
	}
}

func (o *obj) str(k string) string {
	v, ok := o.get(k)
	if !ok {
		return ""
	}
	switch s := v.(type) {
	case string:
		return s
	case int, int64, float64, uint64:
		return fmt.Sprint(s) // building: 3
	}
	o.d.add(o.key(k), "wrong type %s; want a string", typeName(v))
	return ""
}

func (o *obj) boolean(k string) bool {
	v, ok := o.get(k)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		o.d.add(o.key(k), "wrong type %s; want true or false", typeName(v))
	}
	return b
}

func (o *obj) duration(k string) time.Duration {
	s := o.str(k)
	if s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		o.d.add(o.key(k), "%q is not a positive duration like 30s or 5m", s)
		return 0
	}
	return v
}

// strs reads a string or a list of strings.
func (o *obj) strs(k string) []string {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	if s, isStr := v.(string); isStr {
		return []string{s}
	}
	l, isList := v.([]any)
	if !isList {
		o.d.add(o.key(k), "wrong type %s; want a string or a list of strings", typeName(v))
		return nil
	}
	var out []string
	for i, x := range l {
		s, isStr := x.(string)
		if !isStr {
			o.d.add(fmt.Sprintf("%s[%d]", o.key(k), i), "wrong type %s; want a string", typeName(x))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (o *obj) list(k string) []any {
	v, ok := o.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		o.d.add(o.key(k), "wrong type %s; want a list", typeName(v))
	}
	return l
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int64, uint64:
		return "integer"
	case float64:
		return "number"
	case []any:
		return "list"
	case map[string]any, map[any]any, config.Rule:
		return "mapping"
	}
	return fmt.Sprintf("%T", v)
}

func (d *decoder) rule(v any, p string) (Rule, bool) {
	o, ok := d.object(v, p)
	if !ok {
		return Rule{}, false
	}
	defer o.done()
	var r Rule
	r.Name = o.str("name")
	switch {
	case r.Name == "":
		d.add(o.key("name"), "is required")
	case !nameRe.MatchString(r.Name):
		d.add(o.key("name"), "%q must be letters, digits, '-', '_' or '.' (it is a metric label)", r.Name)
	}
	if w, ok := o.get("when"); ok {
		r.When = d.match(w, o.key("when"))
	} else {
		d.add(o.key("when"), "is required (use when: {type: \"*\"} to match every event)")
	}
	if c, ok := o.get("correlate"); ok {
		r.Correlate = d.correlate(c, o.key("correlate"))
	}
	r.Debounce = o.duration("debounce")
	if s, ok := o.get("suppress"); ok {
		r.Suppress = d.windows(s, o.key("suppress"))
	}
	thenV, hasThen := o.m["then"]
	then := o.list("then")
	if _, isList := thenV.([]any); len(then) == 0 && (isList || !hasThen || thenV == nil) {
		d.add(o.key("then"), "is required: a list of actions")
	}
	for i, a := range then {
		if act, ok := d.action(a, fmt.Sprintf("%s[%d]", o.key("then"), i)); ok {
			r.Then = append(r.Then, act)
		}
	}
	return r, true
}

func (d *decoder) match(v any, p string) Match {
	var m Match
	o, ok := d.object(v, p)
	if !ok {
		return m
	}
	defer o.done()
	types := o.strs("type")
	_, typeList := o.m["type"].([]any)
	for i, t := range types {
		k := o.key("type")
		if typeList {
			k = fmt.Sprintf("%s[%d]", k, i)
		}
		if err := checkTypePattern(t); err != nil {
			d.add(k, "%v", err)
			continue
		}
		m.Types = append(m.Types, t)
	}
	if s := o.str("severity"); s != "" {
		m.MinSeverity = event.Severity(s)
		if !m.MinSeverity.Valid() {
			d.add(o.key("severity"), "%q is not info, warning or critical", s)
		}
	}
	if lv, ok := o.get("location"); ok {
		if lo, ok := d.object(lv, o.key("location")); ok {
			m.Location = event.Location{Building: lo.str("building"), Unit: lo.str("unit"), Room: lo.str("room"), Zone: lo.str("zone")}
			lo.done()
		}
	}
	if sv, ok := o.get("source"); ok {
		if so, ok := d.object(sv, o.key("source")); ok {
			m.SourceKind = so.str("kind")
			m.SourceID = so.str("id")
			if _, err := path.Match(m.SourceID, ""); err != nil {
				d.add(so.key("id"), "bad pattern %q: %v", m.SourceID, err)
			}
			so.done()
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

func (d *decoder) correlate(v any, p string) *Correlate {
	o, ok := d.object(v, p)
	if !ok {
		return nil
	}
	defer o.done()
	c := &Correlate{Same: "zone"}
	if a, ok := o.get("after"); ok {
		c.After = d.match(a, o.key("after"))
	} else {
		d.add(o.key("after"), "is required: the event that must come first, e.g. {type: perimeter.intrusion}")
	}
	c.Within = o.duration("within")
	if c.Within == 0 {
		if _, present := o.m["within"]; !present {
			d.add(o.key("within"), "is required, e.g. 60s")
		}
	}
	if s := o.str("same"); s != "" {
		c.Same = s
		if !slices.Contains(sameValues, s) {
			d.add(o.key("same"), "%q is not one of %s", s, strings.Join(sameValues, ", "))
		}
	}
	return c
}

func (d *decoder) windows(v any, p string) schedule.Set {
	items, isList := v.([]any)
	if !isList {
		items = []any{v}
	}
	var set schedule.Set
	for i, it := range items {
		k := p
		if isList {
			k = fmt.Sprintf("%s[%d]", p, i)
		}
		var w schedule.Window
		var err error
		if s, isStr := it.(string); isStr {
			w, err = schedule.Parse(s)
		} else {
			o, ok := d.object(it, k)
			if !ok {
				continue
			}
			days := o.strs("days")
			from, to := o.str("from"), o.str("to")
			o.done()
			w, err = schedule.New(days, from, to)
		}
		if err != nil {
			d.add(k, "%v", err)
			continue
		}
		set = append(set, w)
	}
	return set
}

func (d *decoder) action(v any, p string) (Action, bool) {
	o, ok := d.object(v, p)
	if !ok {
		return Action{}, false
	}
	defer o.done()
	a := Action{Kind: o.str("action")}
	before := len(d.ps)
	switch a.Kind {
	case ActPublish:
		a.Topic = d.template(o, "topic", true)
		a.Payload = d.template(o, "payload", false)
		a.QoS = 1
		if q, ok := o.get("qos"); ok {
			n, isInt := q.(int)
			if !isInt || n < 0 || n > 2 {
				d.add(o.key("qos"), "%v is not 0, 1 or 2", q)
			}
			a.QoS = byte(n)
		}
		a.Retain = o.boolean("retain")
		if a.Topic != nil && !strings.Contains(a.Topic.Root.String(), "{{") {
			if t := a.Topic.Root.String(); strings.ContainsAny(t, "+#") {
				d.add(o.key("topic"), "%q must be a plain topic, not a filter", t)
			} else if d.commands.Actuator(t) {
				d.add(o.key("topic"), "%q commands an actuator or speaks for the gateway: use close_valve, siren or open_gate (no rule may open a valve)", t)
			}
		}
	case ActCloseValve, ActOpenGate, ActSiren:
		kind := actionKinds[a.Kind].kind
		a.Devices = o.strs("devices")
		a.Same = o.str("same")
		if a.Same != "" && !slices.Contains(placeValues, a.Same) {
			d.add(o.key("same"), "%q is not one of %s", a.Same, strings.Join(placeValues, ", "))
		}
		if len(a.Devices) == 0 && a.Same == "" {
			d.add(p, "%s needs devices: [ids] or same: building|unit|room|zone", a.Kind)
		}
		for i, id := range a.Devices {
			dev, ok := d.devices[id]
			k := fmt.Sprintf("%s[%d]", o.key("devices"), i)
			if _, isList := o.m["devices"].([]any); !isList {
				k = o.key("devices")
			}
			switch {
			case !ok:
				d.add(k, "no device has id %q", id)
			case dev.Kind != kind:
				d.add(k, "device %q is a %s, not a %s", id, dev.Kind, kind)
			}
		}
		if a.Kind == ActSiren {
			if b, isBool := o.m["state"].(bool); isBool { // YAML 1.1 habits: state: on
				o.used["state"] = true
				a.State = map[bool]string{true: "on", false: "off"}[b]
			} else {
				a.State = o.str("state")
			}
			if a.State == "" {
				a.State = "on"
			}
			if a.State != "on" && a.State != "off" {
				d.add(o.key("state"), "%q is not on or off", a.State)
			}
		}
	case ActRaiseAlarm:
		if s := o.str("severity"); s != "" {
			a.Severity = event.Severity(s)
			if !a.Severity.Valid() {
				d.add(o.key("severity"), "%q is not info, warning or critical", s)
			}
		}
		a.Key = d.template(o, "key", false)
		a.Assign = strings.TrimSpace(o.str("assign"))
		if len(a.Assign) > 64 {
			d.add(o.key("assign"), "%q is longer than 64 bytes", a.Assign)
		}
	case "":
		d.add(o.key("action"), "is required: one of publish, close_valve, open_gate, siren, raise_alarm")
		for k := range o.m {
			o.used[k] = true // the other keys mean nothing without an action
		}
	default:
		d.add(o.key("action"), "%q is not one of publish, close_valve, open_gate, siren, raise_alarm", a.Kind)
		for k := range o.m {
			o.used[k] = true
		}
	}
	return a, len(d.ps) == before
}

// template parses a text/template and runs it once on a sample event, so a
// misspelt field fails at load and not when the event comes.
func (d *decoder) template(o *obj, k string, required bool) *template.Template {
	src := o.str(k)
	if src == "" {
		if required {
			d.add(o.key(k), "is required")
		}
		return nil
	}
	t, err := template.New(o.key(k)).Funcs(funcs).Option("missingkey=zero").Parse(src)
	if err != nil {
		d.add(o.key(k), "template: %v", cleanTemplateErr(err, o.key(k)))
		return nil
	}
	if err := t.Execute(&bytes.Buffer{}, sampleView()); err != nil {
		d.add(o.key(k), "template: %v", cleanTemplateErr(err, o.key(k)))
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
