package kit

import (
	"errors"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/config"
)

// Decode decodes a device's driver keys strictly into out, a pointer to
// the driver's options struct holding its defaults. An unknown key or a
// wrong type is a problem naming the key (relative to the device entry;
// check-config adds the entry and finds the line).
func Decode(d config.Device, out any) []config.Problem {
	err := d.DriverOptions().Decode("", out)
	if err == nil {
		return nil
	}
	var ke *config.KeyError
	if errors.As(err, &ke) {
		return []config.Problem{{Key: ke.Key, Msg: ke.Msg}}
	}
	return []config.Problem{{Key: "driver", Msg: err.Error()}}
}

// Problems collects a driver's problems with its keys.
type Problems []config.Problem

// Add records a problem with key.
func (ps *Problems) Add(key, format string, a ...any) {
	*ps = append(*ps, config.Problem{Key: key, Msg: fmt.Sprintf(format, a...)})
}

// Strings is a key that is one string or a list of strings (valve: v1, or
// valve: [v1, v2]); empty strings are refused and repeats dropped.
type Strings []string

// UnmarshalYAML accepts a string or a list of strings.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	bad := func(what string) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: wrong type: %s, want a non-empty string or a list of them", n.Line, what)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = nil
			return nil
		}
		if n.Tag != "!!str" || n.Value == "" {
			return bad(fmt.Sprintf("%q", n.Value))
		}
		*s = Strings{n.Value}
	case yaml.SequenceNode:
		out := Strings{}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Tag != "!!str" || c.Value == "" {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: wrong type: `%s`, want a non-empty string", c.Line, c.Value)}}
			}
			if !slices.Contains(out, c.Value) {
				out = append(out, c.Value)
			}
		}
		*s = out
	default:
		return bad("a mapping")
	}
	return nil
}
