// Package gate decides who may pass the barrier gates. It is an ingest
// Actor: every gate.vehicle a plate camera reports gets its decision here
// (allowed opens the barrier at once, before the event is stored; denied
// adds gate.denied for the guard). Allow lists come from config and a plates
// file; visitor passes are created by guards through the API and kept in
// bbolt.
package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"
	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Kind is the device kind this package decides for.
const Kind = "barrier_gate"

// DefaultRepeat is how long a repeated read of one plate at one gate is the
// same vehicle.
const DefaultRepeat = 10 * time.Second

// Decision values written into gate.vehicle.
const (
	Allowed = "allowed"
	Denied  = "denied"
)

// Reasons. They are also metric labels, so the set is fixed.
const (
	ReasonResident = "resident"
	ReasonVisitor  = "visitor"
	ReasonAllowed  = "allow_list"
	ReasonExit     = "exit"
	ReasonBlocked  = "blocked"
	ReasonUnknown  = "unknown"
	ReasonHours    = "outside_hours"
	ReasonNoPlate  = "no_plate"
)

// Opener sends the barrier command; *action.Actuators implements it.
type Opener interface {
	Send(id, action string) error
}

// Options are the controller's dependencies.
type Options struct {
	Gateway, Site string
	Config        config.Gate
	Devices       []config.Device // gate ids (passes may name them)
	Opener        Opener
	// DB keeps visitor passes (bucket gate.passes); nil = no passes.
	DB       *bolt.DB
	Audit    *audit.Log
	Now      func() time.Time // default time.Now
	Location *time.Location   // for hours; default time.Local
	Logger   *slog.Logger
	// Registerer gets warden_gate_decisions_total, warden_gate_repeats_total
	// and warden_gate_open_failures_total; nil = not registered.
	Registerer prometheus.Registerer
}

// Controller holds the lists and decides.
type Controller struct {
	o     Options
	log   *slog.Logger
	gates map[string]bool

	mu        sync.RWMutex
	lists     lists
	file      lists // from plates_file
	fileStamp time.Time
	passes    map[string]Pass // by id

	rmu    sync.Mutex
	recent map[string]recentRead // gate + "\x00" + plate

	decisions *prometheus.CounterVec
	repeats   prometheus.Counter
	openFails prometheus.Counter
}

type recentRead struct {
	at      time.Time
	allowed bool
}

// entry is one allowed plate with its rule.
type entry struct {
	reason string // resident or allow_list
	group  string
	hours  config.Window
	gates  []string
}

type lists struct {
	allow   map[string][]entry
	blocked map[string]bool
}

// Decision is the outcome for one plate at one gate.
type Decision struct {
	Allowed bool
	Reason  string
	Group   string // the allow entry's group
	PassID  string // the visitor pass used
}

// Normalize makes plates comparable: full-width letters and digits folded
// to ASCII, upper case, spaces, dashes, dots and middle dots removed.
// Chinese province characters (京, 沪, 粤…) are kept.
func Normalize(plate string) string {
	var b strings.Builder
	for _, r := range plate {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFEE0
		}
		switch {
		case unicode.IsSpace(r), r == '-', r == '_', r == '.', r == '·', r == '•', r == '・', r == '‐', r == '–', r == '—':
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// Check validates the gate keys for config.Load.
func Check(c *config.Config) []config.Problem {
	_, ps := compile(c.Gate, gateIDs(c.Devices), "gate.")
	if c.Gate.Repeat < 0 {
		ps = append(ps, config.Problem{Key: "gate.repeat", Msg: "must not be negative"})
	}
	if c.Gate.PlatesFile != "" {
		if _, err := loadFile(c.Gate.PlatesFile, gateIDs(c.Devices)); err != nil {
			ps = append(ps, config.Problem{Key: "gate.plates_file", Msg: err.Error()})
		}
	}
	return ps
}

func gateIDs(devs []config.Device) map[string]bool {
	ids := map[string]bool{}
	for _, d := range devs {
		if d.Kind == Kind {
			ids[d.ID] = true
		}
	}
	return ids
}

// compile turns config lists into lookup tables; prefix names keys in problems.
func compile(g config.Gate, gates map[string]bool, prefix string) (lists, []config.Problem) {
	l := lists{allow: map[string][]entry{}, blocked: map[string]bool{}}
	var ps []config.Problem
	plate := func(key, p string) string {
		n := Normalize(p)
		if n == "" || len(n) > 32 {
			ps = append(ps, config.Problem{Key: key, Msg: fmt.Sprintf("%q is not a plate", p)})
			return ""
		}
		return n
	}
	for i, p := range g.Residents {
		if n := plate(fmt.Sprintf("%sresidents[%d]", prefix, i), p); n != "" {
			l.allow[n] = append(l.allow[n], entry{reason: ReasonResident, group: ReasonResident, hours: g.GroupHours[ReasonResident]})
		}
	}
	for i, a := range g.Allow {
		k := fmt.Sprintf("%sallow[%d]", prefix, i)
		n := plate(k+".plate", a.Plate)
		for j, id := range a.Gates {
			if !gates[id] {
				ps = append(ps, config.Problem{Key: fmt.Sprintf("%s.gates[%d]", k, j), Msg: fmt.Sprintf("%q is not a barrier_gate device", id)})
			}
		}
		if n == "" {
			continue
		}
		e := entry{reason: ReasonAllowed, group: a.Group, hours: a.Hours, gates: a.Gates}
		if e.group == "" {
			e.group = "allowed"
		}
		if !e.hours.IsSet() {
			e.hours = g.GroupHours[e.group]
		}
		l.allow[n] = append(l.allow[n], e)
	}
	for i, p := range g.Blocked {
		if n := plate(fmt.Sprintf("%sblocked[%d]", prefix, i), p); n != "" {
			l.blocked[n] = true
		}
	}
	return l, ps
}

// loadFile reads a plates file: the residents, allow, blocked and
// group_hours keys of the gate section, strictly.
func loadFile(path string, gates map[string]bool) (lists, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return lists{}, fmt.Errorf("plates file: %w", err)
	}
	var g config.Gate
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil && !errors.Is(err, io.EOF) {
		return lists{}, fmt.Errorf("plates file %s: %w", path, err)
	}
	if g.PlatesFile != "" || g.Repeat != 0 || g.OpenExits != nil {
		return lists{}, fmt.Errorf("plates file %s: only residents, allow, blocked and group_hours belong here", path)
	}
	l, ps := compile(g, gates, "")
	if len(ps) > 0 {
		return lists{}, fmt.Errorf("plates file %s: %s", path, ps[0])
	}
	return l, nil
}

// New builds the controller and loads the stored visitor passes.
func New(o Options) (*Controller, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Config.Repeat == 0 {
		o.Config.Repeat = config.Duration(DefaultRepeat)
	}
	if o.Opener == nil {
		return nil, fmt.Errorf("gate: an opener (the actuators) is required")
	}
	f := promauto.With(o.Registerer)
	c := &Controller{
		o: o, log: o.Logger.With("component", "gate"), gates: gateIDs(o.Devices),
		passes: map[string]Pass{}, recent: map[string]recentRead{},
		decisions: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_gate_decisions_total", Help: "Gate decisions, by decision and reason."}, []string{"decision", "reason"}),
		repeats:   f.NewCounter(prometheus.CounterOpts{Name: "warden_gate_repeats_total", Help: "Repeated plate reads folded into an earlier decision."}),
		openFails: f.NewCounter(prometheus.CounterOpts{Name: "warden_gate_open_failures_total", Help: "Open commands for allowed vehicles that could not be sent."}),
	}
	l, ps := compile(o.Config, c.gates, "gate.")
	if len(ps) > 0 {
		return nil, fmt.Errorf("gate: %s", ps[0])
	}
	c.lists = l
	if o.Config.PlatesFile != "" {
		if err := c.reloadFile(); err != nil {
			return nil, err
		}
	}
	if err := c.loadPasses(); err != nil {
		return nil, err
	}
	return c, nil
}

// reloadFile re-reads plates_file when its modification time changed. A bad
// file keeps the previous lists.
func (c *Controller) reloadFile() error {
	fi, err := os.Stat(c.o.Config.PlatesFile)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	c.mu.RLock()
	same := fi.ModTime().Equal(c.fileStamp)
	c.mu.RUnlock()
	if same {
		return nil
	}
	l, err := loadFile(c.o.Config.PlatesFile, c.gates)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	c.mu.Lock()
	c.file, c.fileStamp = l, fi.ModTime()
	c.mu.Unlock()
	c.log.Info("plates file loaded", "path", c.o.Config.PlatesFile, "plates", len(l.allow), "blocked", len(l.blocked))
	return nil
}

// Run re-reads the plates file when it changes and drops visitor passes
// that ended more than a week ago, every minute until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if c.o.Config.PlatesFile != "" {
			if err := c.reloadFile(); err != nil {
				c.log.Error("plates file not reloaded; keeping the previous lists", "err", err)
			}
		}
		c.prunePasses()
	}
}

// Decide returns the decision for a plate (any spelling) at a gate.
func (c *Controller) Decide(gateID, plate, direction string, at time.Time) Decision {
	n := Normalize(plate)
	if n == "" {
		return Decision{Reason: ReasonNoPlate}
	}
	local := at.In(c.o.Location)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.lists.blocked[n] || c.file.blocked[n] {
		return Decision{Reason: ReasonBlocked}
	}
	if direction == "out" && (c.o.Config.OpenExits == nil || *c.o.Config.OpenExits) {
		return Decision{Allowed: true, Reason: ReasonExit}
	}
	known := false
	for _, es := range [][]entry{c.lists.allow[n], c.file.allow[n]} {
		for _, e := range es {
			if len(e.gates) > 0 && !slices.Contains(e.gates, gateID) {
				continue
			}
			known = true
			if e.hours.Contains(local) {
				return Decision{Allowed: true, Reason: e.reason, Group: e.group}
			}
		}
	}
	for _, p := range c.passes {
		if p.plate != n || (len(p.Gates) > 0 && !slices.Contains(p.Gates, gateID)) {
			continue
		}
		known = true
		if !at.Before(p.From) && at.Before(p.Until) {
			return Decision{Allowed: true, Reason: ReasonVisitor, PassID: p.ID}
		}
	}
	if known {
		return Decision{Reason: ReasonHours}
	}
	return Decision{Reason: ReasonUnknown}
}

// React decides every gate.vehicle of a barrier gate: allowed opens the
// barrier at once; denied adds gate.denied (critical for a blocked plate).
// A repeated read within gate.repeat is dropped (an allowed one is sent open
// again, which is harmless and helps when the first command was lost).
func (c *Controller) React(dev config.Device, m drivers.Message, evs []*event.Event) []*event.Event {
	if dev.Kind != Kind {
		return evs
	}
	out := evs[:0:0]
	for _, e := range evs {
		if e.Type != event.GateVehicle {
			out = append(out, e)
			continue
		}
		plate, _ := e.Data["plate"].(string)
		dir, _ := e.Data["direction"].(string)
		if c.repeat(dev.ID, plate, e.Time) {
			continue
		}
		d := c.Decide(dev.ID, plate, dir, e.Time)
		c.remember(dev.ID, plate, e.Time, d.Allowed)
		e.Data["plate_normalized"] = Normalize(plate)
		e.Data["reason"] = d.Reason
		if d.PassID != "" {
			e.Data["pass_id"] = d.PassID
		}
		if d.Group != "" && d.Reason == ReasonAllowed {
			e.Data["group"] = d.Group
		}
		if d.Allowed {
			e.Data["decision"] = Allowed
			c.decisions.WithLabelValues(Allowed, d.Reason).Inc()
			if err := c.o.Opener.Send(dev.ID, "open"); err != nil {
				c.openFails.Inc()
				e.Data["open_error"] = err.Error()
				c.log.Error("open gate for an allowed vehicle", "gate", dev.ID, "reason", d.Reason, "err", err)
			}
			out = append(out, e)
			continue
		}
		e.Data["decision"] = Denied
		c.decisions.WithLabelValues(Denied, d.Reason).Inc()
		out = append(out, e)
		sev := event.Warning
		if d.Reason == ReasonBlocked {
			sev = event.Critical
		}
		o := event.Origin{Gateway: e.Gateway, Site: e.Site, Source: e.Source, Location: e.Location, Time: e.Time}
		denied, err := event.Make(o, event.GateDenied, sev, map[string]any{
			"plate": plate, "direction": dir, "reason": d.Reason, "vehicle_event": e.ID,
		})
		if err == nil {
			out = append(out, denied)
		}
	}
	return out
}

func (c *Controller) repeat(gateID, plate string, at time.Time) bool {
	k := gateID + "\x00" + Normalize(plate)
	c.rmu.Lock()
	r, ok := c.recent[k]
	c.rmu.Unlock()
	if !ok || at.Sub(r.at) >= c.o.Config.Repeat.D() || at.Before(r.at) {
		return false
	}
	c.repeats.Inc()
	if r.allowed {
		if err := c.o.Opener.Send(gateID, "open"); err != nil {
			c.openFails.Inc()
		}
	}
	return true
}

func (c *Controller) remember(gateID, plate string, at time.Time, allowed bool) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.recent) > 1024 {
		for k, r := range c.recent {
			if at.Sub(r.at) >= c.o.Config.Repeat.D() {
				delete(c.recent, k)
			}
		}
	}
	c.recent[gateID+"\x00"+Normalize(plate)] = recentRead{at: at, allowed: allowed}
}
