// Package drivers turns device messages into events. Each device kind has a
// folder (drivers/gas, drivers/wristband, …) that registers one Factory per
// protocol dialect under (kind, driver), as Telegraf plugins do. Adding a
// vendor is a new file plus one Register line; nothing else changes.
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

// Registry maps (kind, driver) to factories.
type Registry struct {
	mu sync.RWMutex
	m  map[key]Factory
}

// Default is the registry that driver packages add themselves to.
var Default = &Registry{}

// Register adds a factory; a duplicate is a programming error.
func (r *Registry) Register(kind, driver string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[key]Factory{}
	}
	k := key{kind, driver}
	if _, dup := r.m[k]; dup {
		panic(fmt.Sprintf("drivers: %s/%s registered twice", kind, driver))
	}
	r.m[k] = f
}

// Register adds to Default.
func Register(kind, driver string, f Factory) { Default.Register(kind, driver, f) }

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
	f, ok := r.m[key{d.Kind, d.Driver}]
	r.mu.RUnlock()
	if !ok {
		ds := r.Drivers(d.Kind)
		return nil, []config.Problem{{Key: "driver", Msg: fmt.Sprintf("%q is not a driver for kind %s (have: %v)", d.Driver, d.Kind, ds)}}
	}
	return f(d)
}

// Validate is a config validator that builds every device once, so a bad
// driver key fails check-config with its line.
func (r *Registry) Validate(c *config.Config) []config.Problem {
	var ps []config.Problem
	for i, d := range c.Devices {
		if !slices.Contains(config.DeviceKinds, d.Kind) || d.Driver == "" {
			continue // reported by config itself
		}
		_, probs := r.New(d)
		for _, p := range probs {
			p.Key = fmt.Sprintf("devices[%d].%s", i, p.Key)
			ps = append(ps, p)
		}
	}
	return ps
}
