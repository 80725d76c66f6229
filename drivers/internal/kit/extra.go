package kit

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/smartcommunity/warden/edge/config"
)

// Extra reads a device's driver-specific keys. Each getter marks its key as
// known and records a problem for a wrong type; Problems adds one for every
// key no getter asked for.
type Extra struct {
	m     map[string]any
	known map[string]bool
	probs []config.Problem
}

// NewExtra wraps d.Extra (nil is fine).
func NewExtra(m map[string]any) *Extra {
	return &Extra{m: m, known: map[string]bool{}}
}

// Problemf records a problem for key.
func (x *Extra) Problemf(key, f string, a ...any) {
	x.probs = append(x.probs, config.Problem{Key: key, Msg: fmt.Sprintf(f, a...)})
}

func (x *Extra) get(key string) (any, bool) {
	x.known[key] = true
	v, ok := x.m[key]
	return v, ok && v != nil
}

// Has reports whether key is set (and marks it known).
func (x *Extra) Has(key string) bool {
	_, ok := x.get(key)
	return ok
}

// String reads a string key.
func (x *Extra) String(key, def string) string {
	v, ok := x.get(key)
	if !ok {
		return def
	}
	s, isStr := v.(string)
	if !isStr {
		x.Problemf(key, "wrong type: %s, want a string", Describe(norm(v)))
		return def
	}
	return s
}

// Strings reads a key that is one string or a list of strings.
func (x *Extra) Strings(key string) []string {
	v, ok := x.get(key)
	if !ok {
		return nil
	}
	switch s := v.(type) {
	case string:
		if s == "" {
			x.Problemf(key, "is empty")
			return nil
		}
		return []string{s}
	case []any:
		out := make([]string, 0, len(s))
		for i, e := range s {
			str, isStr := e.(string)
			if !isStr || str == "" {
				x.Problemf(fmt.Sprintf("%s[%d]", key, i), "wrong type: %s, want a non-empty string", Describe(norm(e)))
				continue
			}
			if !slices.Contains(out, str) {
				out = append(out, str)
			}
		}
		return out
	}
	x.Problemf(key, "wrong type: %s, want a string or a list of strings", Describe(norm(v)))
	return nil
}

// Number reads a finite number key.
func (x *Extra) Number(key string, def float64) float64 {
	v, ok := x.get(key)
	if !ok {
		return def
	}
	f, isNum := toFloat(v)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) {
		x.Problemf(key, "wrong type: %s, want a number", Describe(norm(v)))
		return def
	}
	return f
}

// Bool reads a boolean key.
func (x *Extra) Bool(key string, def bool) bool {
	v, ok := x.get(key)
	if !ok {
		return def
	}
	b, isBool := v.(bool)
	if !isBool {
		x.Problemf(key, "wrong type: %s, want true or false", Describe(norm(v)))
		return def
	}
	return b
}

// Map reads a mapping key, nil when absent.
func (x *Extra) Map(key string) map[string]any {
	v, ok := x.get(key)
	if !ok {
		return nil
	}
	m, isMap := asMap(v)
	if !isMap {
		x.Problemf(key, "wrong type: %s, want a mapping", Describe(norm(v)))
		return nil
	}
	return m
}

// Problems returns every problem found, plus one per unknown key, in key order.
func (x *Extra) Problems() []config.Problem {
	var unknown []string
	for k := range x.m {
		if !x.known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(x.known))
	for k := range x.known {
		known = append(known, k)
	}
	sort.Strings(known)
	ps := slices.Clone(x.probs)
	for _, k := range unknown {
		ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("unknown key %q for this driver (known: %v)", k, known)})
	}
	return ps
}

// toFloat accepts the number types YAML and JSON decoders produce.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	return 0, false
}

// asMap accepts map[string]any and the map[any]any yaml produces when a
// mapping has non-string keys ({1: in}); scalar keys become their text.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, e := range m {
			switch k.(type) {
			case string, int, int64, uint64, float64, bool:
				out[fmt.Sprint(k)] = e
			default:
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// ToFloat is toFloat for drivers that decode nested config themselves.
func ToFloat(v any) (float64, bool) { return toFloat(v) }

// norm maps YAML number types to float64 so Describe names them.
func norm(v any) any {
	if f, ok := toFloat(v); ok {
		return f
	}
	if _, ok := asMap(v); ok {
		return map[string]any{}
	}
	return v
}
