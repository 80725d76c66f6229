package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/schedule"
)

// Window is a time-of-day range written "07:00-20:00" in the gateway's
// local time (TZ), optionally on some days ("sat,sun 09:00-18:00"). From
// after To wraps past midnight ("22:00-06:00"); "00:00-24:00" is the whole
// day. The zero value is "not set". It is a schedule.Window, the one the
// rules and zones use; fields are unexported so the reference-drift test
// sees one key.
type Window struct {
	w   schedule.Window
	set bool
}

// ParseWindow reads "HH:MM-HH:MM" or "mon,tue HH:MM-HH:MM".
func ParseWindow(s string) (Window, error) {
	w, err := schedule.Parse(s)
	if err != nil {
		return Window{}, fmt.Errorf("%q is not a time window like 07:00-20:00: %w", s, err)
	}
	return Window{w: w, set: true}, nil
}

// IsSet reports whether the window was given.
func (w Window) IsSet() bool { return w.set }

// String renders "07:00-20:00"; "" when not set.
func (w Window) String() string {
	if !w.set {
		return ""
	}
	return w.w.String()
}

// Contains reports whether t (in its own location) falls in the window. An
// unset window contains every time.
func (w Window) Contains(t time.Time) bool { return !w.set || w.w.Contains(t) }

// Start is when the occurrence of the window that contains t began; t's
// midnight for an unset window, the zero time when t is outside.
func (w Window) Start(t time.Time) time.Time {
	if !w.set {
		y, mo, d := t.Date()
		return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
	}
	return w.w.Start(t)
}

// UnmarshalYAML reads "07:00-20:00"; "" is not set.
func (w *Window) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.TrimSpace(n.Value) == "" {
		*w = Window{}
		return nil
	}
	v, err := ParseWindow(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return valueError(n, "%q is not a time window like 07:00-20:00 or \"sat,sun 09:00-18:00\"", n.Value)
	}
	*w = v
	return nil
}

// MarshalYAML writes "07:00-20:00".
func (w Window) MarshalYAML() (any, error) { return w.String(), nil }
