// Package drivers turns device messages into events. Each device kind has a
// folder (drivers/gas, drivers/wristband, …) that registers one Driver per
// protocol dialect under (kind, driver), with its typed options and the
// folder's sample.yaml, as Telegraf plugins do. Adding a vendor is a new
// file plus one Register line; nothing else changes.
package drivers

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Message is one MQTT message addressed to a device.
type Message struct {
	Topic   string
	Payload []byte
	Time    time.Time // when the gateway received it
}

// Device is a configured device instance. Handle is called from one
// goroutine per device, so a device may keep state (last gas state, last
// SOS) without locking.
type Device interface {
	// Topics are the exact topics this device listens on: its state topic and,
	// where the protocol has one, an availability topic.
	Topics() []string
	// Handle parses one message. It returns the events it implies (often
	// none: an idle report). A payload it cannot understand returns an error
	// wrapping ErrBadPayload and no events; such messages are dead-lettered.
	Handle(m Message, o event.Origin) ([]*event.Event, error)
}

// Reader is a device that keeps its latest measurements (a wristband's
// heart rate and battery), which need no event while in range. The router
// calls Readings right after Handle, on the same goroutine.
type Reader interface {
	Readings() map[string]float64
}

// Commander is a device that accepts commands (valve, gate, siren).
type Commander interface {
	// Command returns the MQTT message that performs action (close, open,
	// on, off). It must not block.
	Command(action string) (topic string, payload []byte, err error)
}

// Link names the devices a device acts through, under one of its option
// keys: a gas detector's valves (key "valve", kind gas_valve).
type Link struct {
	Key, Kind string
	IDs       []string
}

// Linker is a device that names other devices. The interlock closes a
// detector's valves from here, and Registry.Validate holds every id to a
// configured device of the right kind.
type Linker interface {
	Links() []Link
}

// Describer is a device with facts about it that guards need on events the
// gateway raises for it without a message (a quiet wristband's wearer).
type Describer interface {
	Facts() map[string]any
}

// LinksOf returns the ids a device names under kind; nil for a device that
// names none.
func LinksOf(dev Device, kind string) []string {
	l, ok := dev.(Linker)
	if !ok {
		return nil
	}
	var out []string
	for _, k := range l.Links() {
		if k.Kind == kind {
			out = append(out, k.IDs...)
		}
	}
	return out
}

// Factory builds a device from its config entry. It checks the driver-specific
// keys in d.Extra and returns problems naming them (key relative to the device,
// e.g. "valve").
type Factory func(d config.Device) (Device, []config.Problem)

// Errors a Handle may wrap.
var (
	ErrBadPayload = errors.New("bad payload") // not JSON, wrong shape
	ErrWrongType  = errors.New("wrong type")  // a field of the wrong type, e.g. "gas":"maybe"
)

type key struct{ kind, driver string }

// Driver is one driver of a kind: its factory, its typed options (a struct
// with yaml tags the factory decodes the device's driver keys into, with
// kit.Decode) and its folder's sample.yaml (a list of device entries, one
// per driver, every key with its default). A test holds options and
// sample to the same keys.
type Driver struct {
	Kind, Name string
	New        Factory
	Options    any
	Sample     []byte
}

// Registry maps (kind, driver) to drivers.
type Registry struct {
	mu sync.RWMutex
	m  map[key]Driver
}

// Default is the registry that driver packages add themselves to.
var Default = &Registry{}

// Add registers a driver; a duplicate is a programming error.
func (r *Registry) Add(d Driver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[key]Driver{}
	}
	k := key{d.Kind, d.Name}
	if _, dup := r.m[k]; dup {
		panic(fmt.Sprintf("drivers: %s/%s registered twice", d.Kind, d.Name))
	}
	r.m[k] = d
}

// Register adds a bare factory (tests' own drivers).
func (r *Registry) Register(kind, driver string, f Factory) {
	r.Add(Driver{Kind: kind, Name: driver, New: f})
}

// Register adds a driver to Default: a driver package's one line.
func Register(d Driver) { Default.Add(d) }

// List is every registered driver, by kind and name.
func (r *Registry) List() []Driver {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Driver, 0, len(r.m))
	for _, d := range r.m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Drivers lists the drivers registered for a kind.
func (r *Registry) Drivers(kind string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for k := range r.m {
		if k.kind == kind {
			out = append(out, k.driver)
		}
	}
	sort.Strings(out)
	return out
}

// New builds a device; problems carry keys relative to the device entry.
func (r *Registry) New(d config.Device) (Device, []config.Problem) {
	r.mu.RLock()
	drv, ok := r.m[key{d.Kind, d.Driver}]
	r.mu.RUnlock()
	if !ok {
		ds := r.Drivers(d.Kind)
		return nil, []config.Problem{{Key: "driver", Msg: fmt.Sprintf("%q is not a driver for kind %s (have: %v)", d.Driver, d.Kind, ds)}}
	}
	return drv.New(d)
}

// Validate is a config validator that builds every device once, so a bad
// driver key fails check-config with its line, and holds every device a
// device names (a detector's valve and siren, Linker) to a configured
// device of the right kind: a typo there would leave a leak with no valve
// to close.
func (r *Registry) Validate(c *config.Config) []config.Problem {
	kinds := map[string]string{}
	for _, d := range c.Devices {
		kinds[d.ID] = d.Kind
	}
	var ps []config.Problem
	for i, d := range c.Devices {
		if !slices.Contains(config.DeviceKinds, d.Kind) || d.Driver == "" {
			continue // reported by config itself
		}
		dev, probs := r.New(d)
		for _, p := range probs {
			p.Key = fmt.Sprintf("devices[%d].%s", i, p.Key)
			ps = append(ps, p)
		}
		if l, ok := dev.(Linker); ok && len(probs) == 0 {
			ps = append(ps, linkProblems(i, l.Links(), kinds)...)
		}
	}
	return ps
}

// linkProblems are the ids of device i's links that are not configured
// devices of the link's kind; a list's bad element is named by index.
func linkProblems(i int, links []Link, kinds map[string]string) []config.Problem {
	var ps []config.Problem
	for _, link := range links {
		for j, id := range link.IDs {
			k := fmt.Sprintf("devices[%d].%s", i, link.Key)
			if len(link.IDs) > 1 {
				k = fmt.Sprintf("%s[%d]", k, j)
			}
			switch kind, found := kinds[id]; {
			case !found:
				ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("no device has id %q: a %s here must be a configured %s", id, link.Key, link.Kind)})
			case kind != link.Kind:
				ps = append(ps, config.Problem{Key: k, Msg: fmt.Sprintf("device %q is a %s, not a %s", id, kind, link.Kind)})
			}
		}
	}
	return ps
}
