// Package liveness watches that devices keep talking. It is an ingest
// Actor that notes every message, plus a Run loop that raises
// device.offline when a device is silent past its heartbeat and
// wristband.inactive when a wearer goes quiet during the day. It is the one
// arbiter of online/offline: zigbee2mqtt availability events from drivers
// pass through it, so a device is reported offline (and online) once.
package liveness

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Sink commits the events the Run loop raises; *store.Store implements it.
type Sink interface {
	Append(ctx context.Context, evs ...*event.Event) error
}

// Defaults of the inactivity rule.
const (
	DefaultInactiveAfter = 4 * time.Hour
	DefaultEvery         = 30 * time.Second
)

// DefaultActiveWindow is 07:00-21:00.
func DefaultActiveWindow() config.Window {
	w, _ := config.ParseWindow("07:00-21:00")
	return w
}

// DefaultHeartbeats are the silences after which a device of a kind is
// offline. Battery devices report at least hourly; gates and sirens may
// stay quiet for a day.
func DefaultHeartbeats() map[string]time.Duration {
	return map[string]time.Duration{
		"gas_detector": 2 * time.Hour, "gas_valve": 2 * time.Hour, "wristband": time.Hour,
		"perimeter": 2 * time.Hour, "barrier_gate": 24 * time.Hour, "siren": 24 * time.Hour,
	}
}

var stateBucket = []byte("liveness.state")

// Options are the watcher's dependencies.
type Options struct {
	Gateway, Site string
	Devices       []config.Device
	Config        config.Liveness
	// Registry builds each device once for its facts (a wristband's
	// wearer, drivers.Describer) to put on the events raised for it; nil
	// raises them without.
	Registry *drivers.Registry
	Sink     Sink
	// DB keeps who is offline and last-seen times across restarts (bucket
	// liveness.state); nil keeps them in memory only.
	DB       *bolt.DB
	Now      func() time.Time // default time.Now
	Location *time.Location   // for active windows; default time.Local
	Every    time.Duration    // how often Run checks (30s)
	Logger   *slog.Logger
	// Registerer gets warden_devices_offline and
	// warden_liveness_events_total; nil = not registered.
	Registerer prometheus.Registerer
}

// Watcher tracks every configured device.
type Watcher struct {
	o     Options
	log   *slog.Logger
	start time.Time

	mu   sync.Mutex
	devs map[string]*state
	ids  []string

	offline *prometheus.GaugeVec
	raised  *prometheus.CounterVec
}

type state struct {
	cfg       config.Device
	facts     map[string]any // drivers.Describer's, copied onto quiet events
	timeout   time.Duration  // 0 = no heartbeat check
	quiet     time.Duration  // wristband silence; 0 = off
	window    config.Window
	lastSeen  time.Time // last real message; zero = never
	base      time.Time // silence counts from here: max(lastSeen, start, availability online)
	online    bool
	by        string // why offline: "timeout" or "availability"
	inactive  bool   // wristband.inactive raised in this silence episode
	persisted bool   // the stored copy is current
}

// persisted form of a state.
type record struct {
	LastSeen time.Time `json:"last_seen,omitzero"`
	Offline  bool      `json:"offline,omitempty"`
	By       string    `json:"by,omitempty"`
	Inactive bool      `json:"inactive,omitempty"`
}

// Check validates the liveness keys for config.Load.
func Check(c *config.Config) []config.Problem {
	var ps []config.Problem
	for k, d := range c.Liveness.Heartbeat {
		if !slices.Contains(config.DeviceKinds, k) {
			ps = append(ps, config.Problem{Key: "liveness.heartbeat." + k, Msg: fmt.Sprintf("%q is not a device kind", k)})
		}
		if d < 0 {
			ps = append(ps, config.Problem{Key: "liveness.heartbeat." + k, Msg: "must not be negative"})
		}
	}
	if c.Liveness.InactiveAfter < 0 {
		ps = append(ps, config.Problem{Key: "liveness.inactive_after", Msg: "must not be negative"})
	}
	for i, d := range c.Devices {
		k := fmt.Sprintf("devices[%d]", i)
		if d.Heartbeat != nil && *d.Heartbeat < 0 {
			ps = append(ps, config.Problem{Key: k + ".heartbeat", Msg: "must not be negative"})
		}
		if d.InactiveAfter != nil && *d.InactiveAfter < 0 {
			ps = append(ps, config.Problem{Key: k + ".inactive_after", Msg: "must not be negative"})
		}
		if d.Kind != "wristband" && (d.InactiveAfter != nil || d.ActiveWindow.IsSet()) {
			ps = append(ps, config.Problem{Key: k + ".inactive_after", Msg: "inactive_after and active_window apply to wristbands only"})
		}
	}
	return ps
}

// New builds a watcher. Every device starts as seen now (a restart grants
// one full heartbeat of grace), except those stored as offline, which stay
// offline without a second device.offline.
func New(o Options) (*Watcher, error) {
	if ps := Check(&config.Config{Devices: o.Devices, Liveness: o.Config}); len(ps) > 0 {
		return nil, fmt.Errorf("liveness: %s", ps[0])
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := promauto.With(o.Registerer)
	w := &Watcher{
		o: o, log: o.Logger.With("component", "liveness"), start: o.Now(), devs: map[string]*state{},
		offline: f.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_devices_offline", Help: "Devices currently offline, by kind."}, []string{"kind"}),
		raised:  f.NewCounterVec(prometheus.CounterOpts{Name: "warden_liveness_events_total", Help: "Events raised or passed by the liveness watcher, by type."}, []string{"type"}),
	}
	beats := DefaultHeartbeats()
	for k, d := range o.Config.Heartbeat {
		beats[k] = d.D()
	}
	quiet := DefaultInactiveAfter
	if o.Config.InactiveAfter > 0 {
		quiet = o.Config.InactiveAfter.D()
	}
	window := DefaultActiveWindow()
	if o.Config.ActiveWindow.IsSet() {
		window = o.Config.ActiveWindow
	}
	for _, d := range o.Devices {
		s := &state{cfg: d, timeout: beats[d.Kind], base: w.start, online: true}
		if d.Heartbeat != nil {
			s.timeout = d.Heartbeat.D()
		}
		if o.Registry != nil {
			if dev, ps := o.Registry.New(d); len(ps) == 0 {
				if ds, ok := dev.(drivers.Describer); ok {
					s.facts = ds.Facts()
				}
			}
		}
		if d.Kind == "wristband" {
			s.quiet, s.window = quiet, window
			if d.InactiveAfter != nil {
				s.quiet = d.InactiveAfter.D()
			}
			if d.ActiveWindow.IsSet() {
				s.window = d.ActiveWindow
			}
		}
		w.devs[d.ID] = s
		w.ids = append(w.ids, d.ID)
	}
	slices.Sort(w.ids)
	if err := w.load(); err != nil {
		return nil, err
	}
	for _, s := range w.devs {
		w.offline.WithLabelValues(s.cfg.Kind).Add(0)
		if !s.online {
			w.offline.WithLabelValues(s.cfg.Kind).Inc()
		}
	}
	return w, nil
}

func (w *Watcher) load() error {
	if w.o.DB == nil {
		return nil
	}
	return w.o.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(stateBucket)
		if err != nil {
			return fmt.Errorf("liveness: create bucket: %w", err)
		}
		return b.ForEach(func(k, v []byte) error {
			s, ok := w.devs[string(k)]
			if !ok {
				return nil // a device removed from the config
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				w.log.Warn("ignoring damaged liveness record", "device", string(k), "err", err)
				return nil
			}
			s.lastSeen, s.online, s.by, s.inactive, s.persisted = r.LastSeen, !r.Offline, r.By, r.Inactive, true
			return nil
		})
	})
}

// Status is a device's last real message and whether it counts as online;
// zero and false for an unknown id.
func (w *Watcher) Status(id string) (lastSeen time.Time, online bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.devs[id]
	if !ok {
		return time.Time{}, false
	}
	return s.lastSeen, s.online
}

func (w *Watcher) origin(s *state, at time.Time) event.Origin {
	return event.Origin{Gateway: w.o.Gateway, Site: w.o.Site, Time: at,
		Source: event.Source{Kind: s.cfg.Kind, ID: s.cfg.ID}, Location: s.cfg.Location}
}

// setOnline changes the state and the gauge; it reports whether it changed.
func (w *Watcher) setOnline(s *state, online bool, by string) bool {
	if s.online == online {
		return false
	}
	s.online, s.by, s.persisted = online, by, false
	if online {
		s.by = ""
		w.offline.WithLabelValues(s.cfg.Kind).Dec()
	} else {
		w.offline.WithLabelValues(s.cfg.Kind).Inc()
	}
	return true
}

// React notes a message. Driver availability events are kept only when they
// change the state (so a timeout and z2m availability give one event), and a
// device that speaks while offline gets device.online. Messages on the
// availability topic are the bridge talking, not the device: they do not
// count as a sign of life.
func (w *Watcher) React(dev config.Device, m drivers.Message, evs []*event.Event) []*event.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.devs[dev.ID]
	if !ok {
		return evs
	}
	at := m.Time
	if at.IsZero() {
		at = w.o.Now()
	}
	out := evs[:0:0]
	for _, e := range evs {
		switch e.Type {
		case event.DeviceOffline:
			if !w.setOnline(s, false, "availability") {
				continue // already offline (timed out): one event
			}
		case event.DeviceOnline:
			if !w.setOnline(s, true, "") {
				continue
			}
			s.base = at
		}
		if e.Type == event.DeviceOffline || e.Type == event.DeviceOnline {
			w.raised.WithLabelValues(e.Type).Inc()
		}
		out = append(out, e)
	}
	if m.Topic == dev.Topic+"/availability" {
		return out
	}
	was := s.lastSeen
	s.lastSeen, s.base, s.inactive, s.persisted = at, at, false, false
	if w.setOnline(s, true, "") {
		data := map[string]any{"by": "liveness"}
		if !was.IsZero() {
			data["last_seen"] = was.UTC().Format(time.RFC3339)
		}
		out = append(out, event.New(w.origin(s, at), event.DeviceOnline, data))
		w.raised.WithLabelValues(event.DeviceOnline).Inc()
		w.log.Info("device online again", "device", s.cfg.ID, "kind", s.cfg.Kind)
	}
	return out
}

// Run checks every Every until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.o.Every)
	defer t.Stop()
	for {
		w.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep raises what is due now, commits it through the Sink, persists
// changed states and returns the events raised. Run calls it; tests call it
// with an injected clock.
func (w *Watcher) Sweep(ctx context.Context) []*event.Event {
	now := w.o.Now()
	local := now.In(w.o.Location)
	var evs []*event.Event
	w.mu.Lock()
	for _, id := range w.ids {
		s := w.devs[id]
		if s.online && s.timeout > 0 && now.Sub(s.base) >= s.timeout {
			w.setOnline(s, false, "timeout")
			data := map[string]any{"by": "liveness", "reason": fmt.Sprintf("no message for %s", s.timeout), "heartbeat": s.timeout.String()}
			if !s.lastSeen.IsZero() {
				data["last_seen"] = s.lastSeen.UTC().Format(time.RFC3339)
			}
			evs = append(evs, event.New(w.origin(s, now), event.DeviceOffline, data))
			w.log.Warn("device silent past its heartbeat", "device", id, "kind", s.cfg.Kind, "heartbeat", s.timeout)
		}
		if s.quiet > 0 && !s.inactive && s.window.Contains(local) {
			since := s.base
			if ws := s.window.Start(local); ws.After(since) {
				since = ws
			}
			if now.Sub(since) >= s.quiet {
				s.inactive, s.persisted = true, false
				data := map[string]any{"inactive_after": s.quiet.String(), "active_window": s.window.String()}
				if !s.lastSeen.IsZero() {
					data["last_seen"] = s.lastSeen.UTC().Format(time.RFC3339)
				}
				for k, v := range s.facts {
					data[k] = v
				}
				evs = append(evs, event.New(w.origin(s, now), event.WristbandQuiet, data))
				w.log.Warn("wristband silent inside its active window", "device", id, "inactive_after", s.quiet)
			}
		}
	}
	dirty := map[string]record{}
	for id, s := range w.devs {
		if !s.persisted {
			dirty[id] = record{LastSeen: s.lastSeen, Offline: !s.online, By: s.by, Inactive: s.inactive}
		}
	}
	w.mu.Unlock()
	for _, e := range evs {
		w.raised.WithLabelValues(e.Type).Inc()
	}
	if len(evs) > 0 && w.o.Sink != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := w.o.Sink.Append(actx, evs...); err != nil {
			w.log.Error("liveness events not stored", "events", len(evs), "err", err)
		}
		cancel()
	}
	w.persist(dirty)
	return evs
}

// persist writes changed states in one transaction; a failure is retried
// at the next sweep.
func (w *Watcher) persist(dirty map[string]record) {
	if w.o.DB == nil || len(dirty) == 0 {
		return
	}
	err := w.o.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(stateBucket)
		if err != nil {
			return err
		}
		for id, r := range dirty {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.log.Error("liveness state not persisted", "err", err)
		return
	}
	w.mu.Lock()
	for id, r := range dirty {
		if s := w.devs[id]; s != nil && s.lastSeen.Equal(r.LastSeen) && s.online == !r.Offline && s.inactive == r.Inactive {
			s.persisted = true
		}
	}
	w.mu.Unlock()
}
