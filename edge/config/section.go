package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Section is a plugin's own part of the config (a camera's detect.throw):
// config keeps its YAML, and the plugin decodes it into its typed options
// with Decode. A nil *Section is an absent section (the plugin is off).
type Section struct{ node *yaml.Node }

// SectionOf builds a section from a Go value (a map or a struct with yaml
// tags), for configs made in code: tests, evaluations.
func SectionOf(v any) *Section {
	var n yaml.Node
	if err := n.Encode(v); err != nil || n.Kind != yaml.MappingNode {
		n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	return &Section{node: &n}
}

// ParseSection reads a section from YAML text (a plugin's sample.yaml).
func ParseSection(data []byte) (*Section, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a mapping")
	}
	return &Section{node: doc.Content[0]}, nil
}

// UnmarshalYAML keeps the node; the plugin decodes it.
func (s *Section) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return valueError(n, "must be a mapping of the plugin's keys ({} for its defaults)")
	}
	s.node = n
	return nil
}

// MarshalYAML writes the section back as it was read.
func (s Section) MarshalYAML() (any, error) { return s.node, nil }

// Map is the section as plain values (what a caller edits before
// SectionOf makes a section again).
func (s *Section) Map() map[string]any {
	m := map[string]any{}
	if s != nil && s.node != nil {
		_ = s.node.Decode(&m)
	}
	return m
}

// KeyError is a problem with one key of a section; Key is its full path
// ("cameras[1].detect.throw.facade.floors"), so a config check finds its
// line.
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// Errorf is a KeyError at prefix.key.
func Errorf(prefix, key, format string, a ...any) error {
	return &KeyError{Key: join(prefix, key), Msg: fmt.Sprintf(format, a...)}
}

// join is the key path prefix.key; either may be empty.
func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}

// Problem turns an error of a plugin's section parser into a config
// problem at its key's line (the section's own when it names no key).
func (c *Config) Problem(section string, err error) Problem {
	var ke *KeyError
	if errors.As(err, &ke) {
		return Problem{Key: ke.Key, Line: c.Line(ke.Key), Msg: ke.Msg}
	}
	return Problem{Key: section, Line: c.Line(section), Msg: err.Error()}
}

var typeErrRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// Decode decodes the section strictly into out, a pointer to a struct
// with yaml tags that holds the defaults: the first unknown key (with the
// keys it may be) or wrong type is a *KeyError under prefix.
func (s *Section) Decode(prefix string, out any) error {
	if errs := s.DecodeAll(prefix, out); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// keyOf is the key of a yaml type error on line: the one whose value is
// the `value` the message quotes, else the first on the line.
func (s *Section) keyOf(line int, msg string) string {
	if a, b := strings.Index(msg, "`"), strings.LastIndex(msg, "`"); a >= 0 && b > a {
		if k := keyAtLine(s.node, line, msg[a+1:b], ""); k != "" {
			return k
		}
	}
	return keyAtLine(s.node, line, "", "")
}

var unmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// DecodeAll is Decode reporting every unknown key and wrong value, in
// document order, each key once, so a config check lists them all at once.
// Values it could read are decoded into out even when others are wrong.
func (s *Section) DecodeAll(prefix string, out any) []*KeyError {
	if s == nil || s.node == nil {
		return nil
	}
	var errs []*KeyError
	knownKeys(s.node, reflect.TypeOf(out), prefix, &errs)
	seen := map[string]bool{}
	for _, e := range errs {
		seen[e.Key] = true
	}
	var te *yaml.TypeError
	if err := s.node.Decode(out); errors.As(err, &te) {
		lines, vals := map[string]int{}, map[[2]int]string{}
		walkLines(s.node, prefix, lines, vals)
		for _, msg := range te.Errors {
			key := prefix
			if m := colRe.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				col, _ := strconv.Atoi(m[2])
				key, msg = cmp.Or(vals[[2]int{line, col}], prefix), m[3]
			} else if m := typeErrRe.FindStringSubmatch(msg); m != nil {
				line, _ := strconv.Atoi(m[1])
				msg = m[2]
				if k := s.keyOf(line, msg); k != "" {
					key = join(prefix, k)
				}
			}
			if !seen[key] {
				seen[key] = true
				errs = append(errs, &KeyError{Key: key, Msg: strings.ReplaceAll(msg, "cannot unmarshal ", "wrong type: ")})
			}
		}
	} else if err != nil {
		errs = append(errs, &KeyError{Key: prefix, Msg: err.Error()})
	}
	return errs
}

// knownKeys adds to errs every key of n that t (a struct, through
// pointers) has no field for, and every scalar of the wrong kind, in
// document order; it does not look inside a wrong value. yaml would take 3
// for a string and yes for true; a mis-set option must fail instead.
func knownKeys(n *yaml.Node, t reflect.Type, prefix string, errs *[]*KeyError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return // the type checks its own value
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		want := ""
		switch t.Kind() {
		case reflect.String:
			if n.Tag != "!!str" {
				want = "a string"
			}
		case reflect.Bool:
			if n.Tag != "!!bool" {
				want = "true or false"
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			if n.Tag != "!!int" && n.Tag != "!!float" {
				want = "a number"
			}
		}
		if want != "" {
			*errs = append(*errs, &KeyError{Key: prefix, Msg: fmt.Sprintf("wrong type: %q, want %s", n.Value, want)})
			return
		}
	}
	if n.Tag != "!!null" {
		switch k := t.Kind(); {
		case (k == reflect.Struct || k == reflect.Map) && n.Kind != yaml.MappingNode:
			*errs = append(*errs, &KeyError{Key: prefix, Msg: "wrong type: want a mapping"})
			return
		case k == reflect.Slice && n.Kind != yaml.SequenceNode:
			*errs = append(*errs, &KeyError{Key: prefix, Msg: "wrong type: want a list"})
			return
		}
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			ft, ok := fields[k]
			if !ok {
				names := slices.Sorted(maps.Keys(fields))
				*errs = append(*errs, &KeyError{Key: join(prefix, k), Msg: "unknown key (" + strings.Join(names, ", ") + ")"})
				continue
			}
			knownKeys(v, ft, join(prefix, k), errs)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			knownKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i), errs)
		}
	}
}

// yamlFields maps a struct's YAML keys to their types, inline structs
// included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			if f.Type.Kind() == reflect.Struct {
				for k, v := range yamlFields(f.Type) {
					out[k] = v
				}
			}
			continue // an inline map holds another package's keys
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// keyAtLine is the path of the key whose scalar value val is on line
// (several may share a line in flow style).
func keyAtLine(n *yaml.Node, line int, val, prefix string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			if v := n.Content[i+1]; v.Line == line && (v.Kind == yaml.ScalarNode && v.Value == val || val == "") {
				return p
			}
			if k := keyAtLine(n.Content[i+1], line, val, p); k != "" {
				return k
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if c.Kind == yaml.ScalarNode && c.Line == line && val != "" && c.Value == val {
				return p
			}
			if k := keyAtLine(c, line, val, p); k != "" {
				return k
			}
		}
	}
	return ""
}

// StructKeys lists every key path of a config type: "a.b" for nested
// sections, "a[].b" inside lists. Maps and Sections are leaves: their keys
// belong to other packages.
func StructKeys(t reflect.Type) []string {
	out := map[string]bool{}
	structKeys(t, "", out)
	return slices.Sorted(maps.Keys(out))
}

func structKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(Section{}) {
		return
	}
	for name, ft := range yamlFields(t) {
		path := join(prefix, name)
		out[path] = true
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			structKeys(ft, path, out)
		case reflect.Slice, reflect.Array:
			if el := ft.Elem(); el.Kind() == reflect.Struct || (el.Kind() == reflect.Pointer && el.Elem().Kind() == reflect.Struct) {
				structKeys(el, path+"[]", out)
			}
		}
	}
}

// NodeKeys lists the key paths present in a YAML node, in StructKeys' form.
func NodeKeys(n *yaml.Node) []string {
	out := map[string]bool{}
	nodeKeys(n, "", out)
	return slices.Sorted(maps.Keys(out))
}

// Keys are the key paths the section holds.
func (s *Section) Keys() []string {
	if s == nil || s.node == nil {
		return nil
	}
	return NodeKeys(s.node)
}

func nodeKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			nodeKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			out[p] = true
			nodeKeys(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			nodeKeys(c, prefix+"[]", out)
		}
	}
}
