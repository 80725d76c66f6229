package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Window is a daily time-of-day range written "07:00-20:00" in the
// gateway's local time (TZ). From after To wraps past midnight
// ("22:00-06:00"); "00:00-24:00" is the whole day. The zero value is "not
// set". Fields are unexported so the reference-drift test sees one key.
type Window struct {
	from, to time.Duration // since midnight
	set      bool
}

// ParseWindow reads "HH:MM-HH:MM".
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a time window like 07:00-20:00", s)
	}
	from, err1 := clock(a)
	to, err2 := clock(b)
	if err1 != nil || err2 != nil || from == 24*time.Hour || from == to {
		return Window{}, fmt.Errorf("%q is not a time window like 07:00-20:00", s)
	}
	return Window{from: from, to: to, set: true}, nil
}

func clock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad clock time %q", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// IsSet reports whether the window was given.
func (w Window) IsSet() bool { return w.set }

// String renders "07:00-20:00"; "" when not set.
func (w Window) String() string {
	if !w.set {
		return ""
	}
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(w.from) + "-" + f(w.to)
}

func sinceMidnight(t time.Time) (time.Time, time.Duration) {
	y, mo, d := t.Date()
	mid := time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
	return mid, t.Sub(mid)
}

// Contains reports whether t (in its own location) falls in the window. An
// unset window contains every time.
func (w Window) Contains(t time.Time) bool {
	if !w.set {
		return true
	}
	_, tod := sinceMidnight(t)
	if w.from < w.to {
		return tod >= w.from && tod < w.to
	}
	return tod >= w.from || tod < w.to
}

// Start is when the occurrence of the window that contains t began; t's
// midnight for an unset window, the zero time when t is outside.
func (w Window) Start(t time.Time) time.Time {
	mid, tod := sinceMidnight(t)
	switch {
	case !w.set:
		return mid
	case !w.Contains(t):
		return time.Time{}
	case w.from < w.to || tod >= w.from:
		return mid.Add(w.from)
	default: // wrapped, after midnight: it began yesterday
		y, mo, d := t.Date()
		return time.Date(y, mo, d-1, 0, 0, 0, 0, t.Location()).Add(w.from)
	}
}

// UnmarshalYAML reads "07:00-20:00"; "" is not set.
func (w *Window) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && strings.TrimSpace(n.Value) == "" {
		*w = Window{}
		return nil
	}
	v, err := ParseWindow(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a time window like 07:00-20:00", n.Line, n.Value)}}
	}
	*w = v
	return nil
}

// MarshalYAML writes "07:00-20:00".
func (w Window) MarshalYAML() (any, error) { return w.String(), nil }
