package rules

import (
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/config"
)

// Sample shows every key a rule may have (sample.yaml); a test holds it to
// the spec types below and to configs/warden.yaml.
//
//go:embed sample.yaml
var Sample []byte

// spec is a rule as written. config.Section.DecodeAll reads it strictly
// (unknown keys and wrong types, each with its key path); Parse then checks
// what the values mean and compiles a Rule.
type spec struct {
	Name      string           `yaml:"name"`
	When      *matchSpec       `yaml:"when"`
	Correlate *correlateSpec   `yaml:"correlate"`
	Debounce  *config.Duration `yaml:"debounce"`
	Suppress  oneOrMany[when_] `yaml:"suppress"`
	Then      []actionSpec     `yaml:"then"`
}

type matchSpec struct {
	Type     oneOrMany[string] `yaml:"type"`
	Severity string            `yaml:"severity"`
	Location *struct {
		Building text `yaml:"building"`
		Unit     text `yaml:"unit"`
		Room     text `yaml:"room"`
		Zone     text `yaml:"zone"`
	} `yaml:"location"`
	Source *struct {
		Kind string `yaml:"kind"`
		ID   string `yaml:"id"`
	} `yaml:"source"`
}

type correlateSpec struct {
	After  *matchSpec      `yaml:"after"`
	Within config.Duration `yaml:"within"`
	Same   string          `yaml:"same"`
}

// actionSpec holds the keys of every action; Parse refuses a key that
// does not belong to the action named.
type actionSpec struct {
	Action string `yaml:"action"`
	// publish
	Topic   string `yaml:"topic"`
	Payload string `yaml:"payload"`
	QoS     *int   `yaml:"qos"`
	Retain  bool   `yaml:"retain"`
	// close_valve, open_gate, siren
	Devices oneOrMany[string] `yaml:"devices"`
	Same    string            `yaml:"same"`
	State   onOff             `yaml:"state"`
	// raise_alarm
	Severity string `yaml:"severity"`
	Key      string `yaml:"key"`
	Assign   string `yaml:"assign"`
}

// keysOf are the keys each action takes besides action.
var keysOf = map[string][]string{
	ActPublish:    {"topic", "payload", "qos", "retain"},
	ActCloseValve: {"devices", "same"},
	ActOpenGate:   {"devices", "same"},
	ActSiren:      {"devices", "same", "state"},
	ActRaiseAlarm: {"severity", "key", "assign"},
}

// set lists the keys given a value.
func (a *actionSpec) set() []string {
	var out []string
	for _, k := range []struct {
		name string
		on   bool
	}{
		{"topic", a.Topic != ""}, {"payload", a.Payload != ""}, {"qos", a.QoS != nil}, {"retain", a.Retain},
		{"devices", a.Devices.Items != nil}, {"same", a.Same != ""}, {"state", a.State != ""},
		{"severity", a.Severity != ""}, {"key", a.Key != ""}, {"assign", a.Assign != ""},
	} {
		if k.on {
			out = append(out, k.name)
		}
	}
	return out
}

// oneOrMany is a key that takes one value or a list of them (type:
// gas.leak, or type: [gas.leak, gas.smell]); List says which, so a problem
// names "type" or "type[1]".
type oneOrMany[T any] struct {
	Items []T  `yaml:"-"`
	List  bool `yaml:"-"`
}

func (o *oneOrMany[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		o.List = true
		o.Items = make([]T, 0, len(n.Content))
		return n.Decode(&o.Items)
	}
	var one T
	if err := n.Decode(&one); err != nil {
		return err
	}
	o.Items = []T{one}
	return nil
}

// key is the key path of item i.
func (o oneOrMany[T]) key(k string, i int) string {
	if o.List {
		return fmt.Sprintf("%s[%d]", k, i)
	}
	return k
}

// text is a string that may be written as a number (building: 3).
type text string

func (t *text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueErr(n, "wrong type: want a string")
	}
	*t = text(n.Value)
	return nil
}

// onOff is a siren state; YAML 1.1 habits (state: on) arrive as booleans.
type onOff string

func (s *onOff) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueErr(n, "wrong type: want on or off")
	}
	switch {
	case n.Tag == "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		*s = map[bool]onOff{true: "on", false: "off"}[b]
	default:
		*s = onOff(n.Value)
	}
	return nil
}

// when_ is one suppress window: "sat,sun 10:00-12:00", or {days, from, to}.
type when_ struct {
	Text     string   `yaml:"-"`
	Days     []string `yaml:"-"`
	From, To string   `yaml:"-"`
	Mapping  bool     `yaml:"-"`
}

func (w *when_) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		w.Text = n.Value
		return nil
	case yaml.MappingNode:
		w.Mapping = true
		var m struct {
			Days oneOrMany[string] `yaml:"days"`
			From string            `yaml:"from"`
			To   string            `yaml:"to"`
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "days" && k != "from" && k != "to" {
				return valueErr(n.Content[i+1], "unknown key %q (days, from, to)", k)
			}
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		w.Days, w.From, w.To = m.Days.Items, m.From, m.To
		return nil
	}
	return valueErr(n, "wrong type: want \"days HH:MM-HH:MM\" or {days, from, to}")
}

// valueErr is a decoding error at n's position: decoding goes on and
// DecodeAll names the key at that line and column.
func valueErr(n *yaml.Node, format string, a ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d col %d: %s", n.Line, n.Column, fmt.Sprintf(format, a...))}}
}
