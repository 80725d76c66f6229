// Package kit holds the small helpers every driver folder shares: strict
// JSON field access that maps bad input to drivers.ErrBadPayload or
// drivers.ErrWrongType, driver-key validation that returns config problems,
// zigbee2mqtt availability, and edge (transition) tracking.
package kit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/event"
)

// MaxString bounds a string field a driver copies into an event; a longer
// one is a wrong type (no real device sends a 257-byte plate or action).
const MaxString = 256

// Object decodes a payload that must be one JSON object.
func Object(p []byte) (map[string]any, error) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty payload", drivers.ErrBadPayload)
	}
	if p[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", drivers.ErrBadPayload)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", drivers.ErrBadPayload, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", drivers.ErrBadPayload)
	}
	return m, nil
}

// Get follows a dotted path ("result.PlateResult.license") through nested
// objects. A JSON null counts as absent.
func Get(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// Describe names a JSON value's type for error messages.
func Describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		if len(x) > 32 {
			return fmt.Sprintf("a %d-byte string", len(x))
		}
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// WrongType is the error for a field of the wrong type.
func WrongType(field string, v any, want string) error {
	return fmt.Errorf("%w: %q is %s, want %s", drivers.ErrWrongType, field, Describe(v), want)
}

// Flag reads a boolean that devices spell several ways: true/false,
// "true"/"false" in any case (Tuya sends "True"), and the numbers 0/1.
func Flag(obj map[string]any, field string) (v, ok bool, err error) {
	raw, ok := Get(obj, field)
	if !ok {
		return false, false, nil
	}
	switch x := raw.(type) {
	case bool:
		return x, true, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, true, nil
		case "false":
			return false, true, nil
		}
	case float64:
		switch x {
		case 1:
			return true, true, nil
		case 0:
			return false, true, nil
		}
	}
	return false, false, WrongType(field, raw, "true/false, \"True\"/\"False\" or 0/1")
}

// Number reads a finite number; a numeric string ("12.5") is accepted because
// some converters quote numbers.
func Number(obj map[string]any, field string) (v float64, ok bool, err error) {
	raw, ok := Get(obj, field)
	if !ok {
		return 0, false, nil
	}
	switch x := raw.(type) {
	case float64:
		return x, true, nil
	case string:
		if len(x) <= 32 {
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, true, nil
			}
		}
	}
	return 0, false, WrongType(field, raw, "a number")
}

// String reads a string of at most MaxString bytes.
func String(obj map[string]any, field string) (v string, ok bool, err error) {
	raw, ok := Get(obj, field)
	if !ok {
		return "", false, nil
	}
	s, isStr := raw.(string)
	if !isStr {
		return "", false, WrongType(field, raw, "a string")
	}
	if len(s) > MaxString {
		return "", false, fmt.Errorf("%w: %q is a %d-byte string, over the %d-byte limit", drivers.ErrWrongType, field, len(s), MaxString)
	}
	return s, true, nil
}

// Errs collects the first field error of a parse, so a parser can read every
// field and return once.
type Errs struct{ err error }

// Keep records err if it is the first; it returns nothing so calls chain.
func (e *Errs) Keep(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

// Err is the first error kept.
func (e *Errs) Err() error { return e.err }

// Stamp fills the origin's time from the message when the caller left it zero.
func Stamp(o event.Origin, m drivers.Message) event.Origin {
	if o.Time.IsZero() {
		o.Time = m.Time
	}
	return o
}

// Event builds an event of a type constant; sev empty means the default.
// Types are compile-time constants, so an error here is a programming error.
func Event(o event.Origin, typ string, sev event.Severity, data map[string]any) *event.Event {
	e, err := event.Make(o, typ, sev, data)
	if err != nil {
		panic(err)
	}
	return e
}

// Edge tracks a boolean condition so a driver reports its rising edge once.
// The first report counts as a rise when true: an alarm seen for the first
// time after a restart must not be lost.
type Edge struct {
	known, on bool
}

// Set records v and reports whether it turned on (rose) or turned off after
// being on (fell).
func (e *Edge) Set(v bool) (rose, fell bool) {
	rose = v && (!e.known || !e.on)
	fell = !v && e.known && e.on
	e.known, e.on = true, v
	return rose, fell
}
