package homeassistant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/atomicfile"
	"github.com/smartcommunity/warden/edge/config"
)

// Publisher sends without waiting (the embedded broker in-process, or the
// gateway's MQTT client).
type Publisher interface {
	PublishNoWait(topic string, qos byte, retain bool, payload []byte)
}

// Options configure a Bridge.
type Options struct {
	Gateway   string
	Prefix    string
	Devices   []config.Device
	Cameras   []config.Camera
	Info      Info
	Publisher Publisher
	// Readings returns the drivers' last measurements by device id.
	Readings func() map[string]map[string]float64
	// StateFile remembers the nodes announced, so removed devices get an
	// empty config at the next start.
	StateFile string
	// ReadingsEvery is how often readings are polled (default 2s);
	// ResendDelay bounds the random delay before re-announcing after
	// Home Assistant comes online (default 5s).
	ReadingsEvery, ResendDelay time.Duration
	Logger                     *slog.Logger
}

// Bridge announces devices to Home Assistant and keeps their states.
type Bridge struct {
	o       Options
	t       Topics
	configs map[string]Message
	log     *slog.Logger
	resend  chan struct{}

	mu     sync.Mutex
	states map[string]map[string]any // device or camera id → fields
}

// New builds the bridge; nothing is published before Run.
func New(o Options) *Bridge {
	if o.ReadingsEvery <= 0 {
		o.ReadingsEvery = 2 * time.Second
	}
	if o.ResendDelay <= 0 {
		o.ResendDelay = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t := Topics{Gateway: o.Gateway, Prefix: o.Prefix}
	return &Bridge{o: o, t: t, configs: Configs(t, o.Devices, o.Cameras, o.Info),
		log: o.Logger.With("component", "homeassistant"), resend: make(chan struct{}, 1), states: map[string]map[string]any{}}
}

// SetPublisher sets where messages go, before Run (the publisher exists
// only once the gateway is connected).
func (b *Bridge) SetPublisher(p Publisher) { b.o.Publisher = p }

// Topics are the bridge's topics.
func (b *Bridge) Topics() Topics { return b.t }

// Run announces, clears the devices removed since the last start, then
// keeps readings fresh and announces again whenever Home Assistant says
// it is online, until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	b.clearRemoved()
	b.announce()
	tick := time.NewTicker(b.o.ReadingsEvery)
	defer tick.Stop()
	b.pollReadings()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			b.pollReadings()
		case <-b.resend:
			// A random delay, so a Home Assistant restart is not met by
			// every gateway of the site at the same instant.
			d := time.Duration(rand.Int64N(int64(b.o.ResendDelay)))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			b.announce()
			b.republishStates()
		}
	}
}

// HAStatus takes a message on <prefix>/status.
func (b *Bridge) HAStatus(payload []byte) {
	if string(bytes.TrimSpace(payload)) != "online" {
		return
	}
	select {
	case b.resend <- struct{}{}:
	default:
	}
}

func (b *Bridge) announce() {
	for _, node := range slices.Sorted(maps.Keys(b.configs)) {
		m := b.configs[node]
		b.o.Publisher.PublishNoWait(m.Topic, 1, true, m.Payload)
	}
	b.log.Info("Home Assistant discovery published", "nodes", len(b.configs), "prefix", b.o.Prefix)
}

// clearRemoved empties the retained config of every node announced before
// that is not configured now, and records the nodes of this start.
func (b *Bridge) clearRemoved() {
	if b.o.StateFile == "" {
		return
	}
	var before []string
	if raw, err := os.ReadFile(b.o.StateFile); err == nil {
		if err := json.Unmarshal(raw, &before); err != nil {
			b.log.Warn("Home Assistant node list unreadable; removed devices keep their old config", "file", b.o.StateFile, "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		b.log.Warn("Home Assistant node list unreadable", "file", b.o.StateFile, "err", err)
	}
	for _, node := range before {
		if _, ok := b.configs[node]; !ok {
			b.o.Publisher.PublishNoWait(b.t.Config(node), 1, true, nil)
			b.log.Info("Home Assistant config removed for a device no longer configured", "node", node)
		}
	}
	now := slices.Sorted(maps.Keys(b.configs))
	if err := writeAtomic(b.o.StateFile, now); err != nil {
		b.log.Warn("Home Assistant node list not saved", "file", b.o.StateFile, "err", err)
	}
}

func writeAtomic(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, raw)
}

// set merges fields into a device's state and publishes it when changed.
func (b *Bridge) set(id string, fields map[string]any) {
	b.mu.Lock()
	st := b.states[id]
	if st == nil {
		st = map[string]any{}
		b.states[id] = st
	}
	changed := false
	for k, v := range fields {
		if st[k] != v {
			st[k], changed = v, true
		}
	}
	var payload []byte
	if changed {
		payload, _ = json.Marshal(st)
	}
	b.mu.Unlock()
	if payload != nil {
		b.o.Publisher.PublishNoWait(b.t.State(id), 1, true, payload)
	}
}

func (b *Bridge) republishStates() {
	b.mu.Lock()
	msgs := make(map[string][]byte, len(b.states))
	for id, st := range b.states {
		msgs[id], _ = json.Marshal(st)
	}
	b.mu.Unlock()
	for id, p := range msgs {
		b.o.Publisher.PublishNoWait(b.t.State(id), 1, true, p)
	}
}

func (b *Bridge) pollReadings() {
	if b.o.Readings == nil {
		return
	}
	for id, r := range b.o.Readings() {
		if len(r) == 0 {
			continue
		}
		f := make(map[string]any, len(r))
		for k, v := range r {
			f[k] = v
		}
		b.set(id, f)
	}
}

// stateOf maps an event to the state fields it sets.
var stateOf = map[string]map[string]any{
	"gas.leak":            {"gas": "ON"},
	"gas.cleared":         {"gas": "OFF"},
	"valve.closed":        {"valve": "closed"},
	"valve.opened":        {"valve": "open"},
	"perimeter.intrusion": {"intrusion": "ON"},
	"perimeter.tamper":    {"tamper": "ON"},
	"camera.online":       {"online": "ON"},
	"camera.offline":      {"online": "OFF"},
}

// Observe takes one committed event (its type and stored JSON) and updates
// the state or fires the event entity it concerns. It never blocks.
func (b *Bridge) Observe(typ string, js []byte) {
	fields, isState := stateOf[typ]
	evType, isEvent := eventTypes[typ]
	if !isState && !isEvent && typ != "gate.vehicle" {
		return
	}
	var e struct {
		Source struct {
			ID string `json:"id"`
		} `json:"source"`
		Data struct {
			Plate string `json:"plate"`
		} `json:"data"`
	}
	if err := json.Unmarshal(js, &e); err != nil || e.Source.ID == "" {
		return
	}
	id := e.Source.ID
	switch {
	case typ == "gate.vehicle":
		b.set(id, map[string]any{"plate": e.Data.Plate})
	case isState:
		b.set(id, fields)
	}
	if isEvent {
		p, _ := json.Marshal(map[string]string{"event_type": evType})
		b.o.Publisher.PublishNoWait(b.t.Event(id), 1, false, p)
	}
}
