package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config: the key path, its line and why.
type Problem struct {
	Key  string
	Line int
	Msg  string
	File string // "" = the config file; else the calibration overlay
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Msg)
}

func (p Problem) located(file string) string {
	if p.File != "" {
		file = p.File
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", file, p.Line, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", file, p.Key, p.Msg)
}

// Error lists every problem found in one file.
type Error struct {
	Path     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s)", e.Path, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.located(e.Path))
	}
	return b.String()
}

// Check is an extra validation owned by another package (the driver
// registry, rules, detectors), so config imports none of them. Keys in the
// problems it returns are full paths such as "devices[2].valve".
type Check func(*Config) []Problem

// Load reads, strictly decodes, defaults and validates a config file.
func Load(path string, checks ...Check) (*Config, error) {
	return LoadWith(path, nil, checks...)
}

// LoadWith is Load with overlay as the calibration overlay's content
// instead of the file's (nil: the file, if any): a calibration checked
// before it is saved.
func LoadWith(path string, overlay []byte, checks ...Check) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return parse(path, data, overlay, true, checks...)
}

// MaxFileBytes bounds a config file; anything bigger is a mistake.
const MaxFileBytes = 4 << 20

// Parse is Load on bytes; path is used in messages only.
func Parse(path string, data []byte, checks ...Check) (*Config, error) {
	return parse(path, data, nil, false, checks...)
}

// parse reads the config and, with withOverlay, its calibration overlay.
func parse(path string, data, overlay []byte, withOverlay bool, checks ...Check) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, &Error{Path: path, Problems: []Problem{{Key: "(file)", Msg: fmt.Sprintf("%d bytes is over the %d byte limit", len(data), MaxFileBytes)}}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Path: path, Problems: []Problem{syntaxProblem(err)}}
	}
	c := &Config{path: path, lines: map[string]int{}, values: map[[2]int]string{}}
	if len(root.Content) > 0 {
		walkLines(root.Content[0], "", c.lines, c.values)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ps []Problem
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{Path: path, Problems: []Problem{syntaxProblem(err)}}
		}
		// yaml decodes what it can past type errors, so validation still
		// runs and every problem is reported at once.
		ps = c.decodeProblems(te)
	}
	c.applyDefaults()
	if withOverlay {
		ops, err := c.readOverlay(overlay)
		if err != nil {
			return nil, err
		}
		ps = append(ps, ops...)
	}
	ps = append(ps, c.validate()...)
	for _, check := range checks {
		ps = append(ps, check(c)...)
	}
	if len(ps) > 0 {
		for i := range ps {
			if ps[i].Line == 0 && ps[i].File == "" {
				ps[i].Line = c.Line(ps[i].Key)
			}
			c.locate(&ps[i])
		}
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		return nil, &Error{Path: path, Problems: ps}
	}
	return c, nil
}

// Path is the file the config was loaded from.
func (c *Config) Path() string { return c.path }

// Line returns the line of a key path such as "devices[2].topic", or of its
// nearest parent that has one; 0 when unknown.
func (c *Config) Line(key string) int { return lineIn(c.lines, key) }

// lineIn is the line of key in lines, or of its nearest parent.
func lineIn(lines map[string]int, key string) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// walkLines maps every key path to its line, and every value's line and
// column to its key path (several keys can share a line in flow style).
func walkLines(n *yaml.Node, prefix string, out map[string]int, vals map[[2]int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkLines(c, prefix, out, vals)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			out[p] = k.Line
			vals[[2]int{v.Line, v.Column}] = p
			walkLines(v, p, out, vals)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			out[p] = c.Line
			vals[[2]int{c.Line, c.Column}] = p
			walkLines(c, p, out, vals)
		}
	}
}

// valueError is a decoding error that names its value's position, so the
// problem names the right key even when a line holds several.
func valueError(n *yaml.Node, format string, a ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d col %d: %s", n.Line, n.Column, fmt.Sprintf(format, a...))}}
}

var (
	lineRe    = regexp.MustCompile(`^line (\d+): (.*)$`)
	colRe     = regexp.MustCompile(`^line (\d+) col (\d+): (.*)$`)
	unknownRe = regexp.MustCompile(`field (\S+) not found in type (\S+)`)
)

func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		l, _ := strconv.Atoi(m[1])
		return Problem{Key: "(syntax)", Line: l, Msg: m[2]}
	}
	return Problem{Key: "(syntax)", Msg: msg}
}

// decodeProblems turns yaml's type errors into problems that name the key.
func (c *Config) decodeProblems(te *yaml.TypeError) []Problem {
	byLine := map[int][]string{}
	for k, l := range c.lines {
		byLine[l] = append(byLine[l], k)
	}
	var ps []Problem
	for _, e := range te.Errors {
		p := Problem{Key: "(value)", Msg: e}
		if m := colRe.FindStringSubmatch(e); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			p.Msg = m[3]
			p.Key = c.values[[2]int{p.Line, col}]
			if p.Key == "" {
				p.Key = keyOnLine(byLine[p.Line], "")
			}
		} else if m := lineRe.FindStringSubmatch(e); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = m[2]
			p.Key = keyOnLine(byLine[p.Line], "")
		}
		if m := unknownRe.FindStringSubmatch(p.Msg); m != nil {
			p.Key = keyOnLine(byLine[p.Line], m[1])
			p.Msg = fmt.Sprintf("unknown key %q", m[1])
		} else {
			p.Msg = strings.ReplaceAll(p.Msg, "cannot unmarshal ", "wrong type: ")
		}
		ps = append(ps, p)
	}
	return ps
}

// keyOnLine picks the key path on a line: the one ending in name when given,
// else the deepest.
func keyOnLine(keys []string, name string) string {
	best := ""
	for _, k := range keys {
		if name != "" && (k == name || strings.HasSuffix(k, "."+name)) {
			return k
		}
		if len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return "(value)"
	}
	return best
}

// UnmarshalYAML reads "10s", "5m", "1h30m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		// A *yaml.TypeError lets decoding go on, so this is reported with
		// its key alongside every other problem.
		return valueError(n, "%q is not a duration like 10s or 5m", n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
