package vision

import (
	"fmt"
	"sort"
	"sync"

	"github.com/smartcommunity/warden/edge/config"
)

// Plugin is a kind of detector: the cameras[].detect.<Name> section that
// turns it on, its place in the order detectors see a frame, how to build
// it, and the strict check of its section that every config load runs.
type Plugin struct {
	Name  string
	Order int // lower sees each frame first
	New   Factory
	Check config.Check
	// Options is the section's typed form, a struct with yaml tags, and
	// Sample the plugin's sample.yaml: every key with its default. A test
	// holds both, and configs/warden.yaml, to the same keys.
	Options any
	Sample  []byte
}

var (
	pluginsMu sync.RWMutex
	plugins   = map[string]Plugin{}
)

// Register adds a detector kind; each detector package registers itself.
func Register(p Plugin) {
	pluginsMu.Lock()
	defer pluginsMu.Unlock()
	if _, dup := plugins[p.Name]; dup {
		panic("vision: detector " + p.Name + " registered twice")
	}
	plugins[p.Name] = p
}

// Plugins are the registered detector kinds in frame order.
func Plugins() []Plugin {
	pluginsMu.RLock()
	defer pluginsMu.RUnlock()
	out := make([]Plugin, 0, len(plugins))
	for _, p := range plugins {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

// Factories are the registered factories in frame order, with those named
// in replace swapped (a nil replacement leaves that detector out).
func Factories(replace map[string]Factory) []Factory {
	var out []Factory
	for _, p := range Plugins() {
		f := p.New
		if r, ok := replace[p.Name]; ok {
			f = r
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// Checks are every registered detector's config check.
func Checks() []config.Check {
	var out []config.Check
	for _, p := range Plugins() {
		if p.Check != nil {
			out = append(out, p.Check)
		}
	}
	return out
}

// SectionCheck checks a detector's section with its strict parser on every
// camera that has one, so a typo fails at load with its key's line.
func SectionCheck[O any](name string, parse func(prefix string, s *config.Section) (O, error)) config.Check {
	return func(c *config.Config) []config.Problem {
		var ps []config.Problem
		for i, cam := range c.Cameras {
			sec := cam.Detect.Section(name)
			if sec == nil {
				continue
			}
			k := fmt.Sprintf("cameras[%d].detect.%s", i, name)
			if _, err := parse(k, sec); err != nil {
				ps = append(ps, c.Problem(k, err))
			}
		}
		return ps
	}
}
