// Package zones arms and disarms perimeter zones: schedules from
// alarms.zones, and guards' manual overrides through the API (persisted in
// bbolt, audited). As an ingest stage it makes a perimeter.intrusion in an
// armed zone critical and keeps one in a disarmed zone as info with
// data.armed=false, so it is recorded but raises no alarm.
package zones

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/schedule"
)

var bucket = []byte("zones.overrides")

// Options are the dependencies of Zones.
type Options struct {
	Zones []config.ArmZone
	DB    *bolt.DB   // overrides live in bucket zones.overrides
	Audit *audit.Log // nil = overrides are not audited (tests only)
	// Location is the time zone of the schedules (default time.Local, the
	// box's local time).
	Location   *time.Location
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Override is a guard's manual arm or disarm.
type Override struct {
	Armed bool       `json:"armed"`
	Until *time.Time `json:"until"` // nil = until cleared
	By    string     `json:"by"`
	At    time.Time  `json:"at"`
	Note  string     `json:"note,omitempty"`
}

func (o *Override) activeAt(t time.Time) bool {
	return o != nil && (o.Until == nil || t.Before(*o.Until))
}

type zone struct {
	name   string
	always bool
	sched  schedule.Set
}

// Zones knows every configured zone and its override.
type Zones struct {
	opts  Options
	log   *slog.Logger
	zones map[string]*zone
	names []string

	mu        sync.Mutex
	overrides map[string]*Override

	intrusions *prometheus.CounterVec
}

// Errors Set and Clear return.
var (
	ErrUnknownZone = errors.New("no such zone")
	ErrPast        = errors.New("until is not in the future")
)

// New builds the zones and loads the saved overrides.
func New(o Options) (*Zones, error) {
	if o.DB == nil {
		return nil, errors.New("zones: a database is required")
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if ps := check(o.Zones); len(ps) > 0 {
		return nil, fmt.Errorf("zones: %s", ps[0])
	}
	f := promauto.With(o.Registerer)
	z := &Zones{
		opts: o, log: o.Logger.With("component", "zones"),
		zones: map[string]*zone{}, overrides: map[string]*Override{},
		intrusions: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_zone_intrusions_total",
			Help: "perimeter.intrusion events by configured zone and whether it was armed."}, []string{"zone", "armed"}),
	}
	for _, c := range o.Zones {
		zn := &zone{name: c.Name, always: c.AlwaysArmed}
		for _, w := range c.Armed {
			win, _ := schedule.New(w.Days, w.From, w.To) // checked above
			zn.sched = append(zn.sched, win)
		}
		z.zones[c.Name] = zn
		z.names = append(z.names, c.Name)
	}
	sort.Strings(z.names)
	if err := z.load(); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *Zones) load() error {
	return z.opts.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return fmt.Errorf("zones: create bucket: %w", err)
		}
		return b.ForEach(func(k, v []byte) error {
			var o Override
			if err := json.Unmarshal(v, &o); err != nil {
				z.log.Warn("zones: ignoring unreadable override", "zone", string(k), "err", err)
				return nil
			}
			if _, ok := z.zones[string(k)]; ok {
				z.overrides[string(k)] = &o
			}
			return nil
		})
	})
}

// Names lists the configured zones, sorted.
func (z *Zones) Names() []string { return slices.Clone(z.names) }

// Armed reports whether zone name is armed at t; known is false for a zone
// that is not configured (which counts as armed).
func (z *Zones) Armed(name string, t time.Time) (armed, known bool) {
	zn, ok := z.zones[name]
	if !ok {
		return true, false
	}
	z.mu.Lock()
	o := z.overrides[name]
	z.mu.Unlock()
	return z.armedAt(zn, o, t), true
}

func (z *Zones) armedAt(zn *zone, o *Override, t time.Time) bool {
	if o.activeAt(t) {
		return o.Armed
	}
	return z.scheduled(zn, t)
}

func (z *Zones) scheduled(zn *zone, t time.Time) bool {
	return zn.always || zn.sched.Contains(t.In(z.opts.Location))
}

// State is a zone as GET /api/v1/zones shows it.
type State struct {
	Name        string     `json:"name"`
	Armed       bool       `json:"armed"`
	By          string     `json:"by"` // always, schedule or override
	AlwaysArmed bool       `json:"always_armed"`
	Schedule    []string   `json:"schedule"`
	Override    *Override  `json:"override"`    // the active override, or null
	NextChange  *time.Time `json:"next_change"` // when the state changes by itself, or null
}

// States returns every zone's state now.
func (z *Zones) States() []State {
	out := make([]State, 0, len(z.names))
	for _, n := range z.names {
		st, _ := z.State(n)
		out = append(out, st)
	}
	return out
}

// State returns one zone's state now.
func (z *Zones) State(name string) (State, error) {
	zn, ok := z.zones[name]
	if !ok {
		return State{}, fmt.Errorf("%w: %q", ErrUnknownZone, name)
	}
	now := z.opts.Now()
	z.mu.Lock()
	o := z.overrides[name]
	z.mu.Unlock()
	st := State{Name: name, AlwaysArmed: zn.always, Schedule: []string{}, By: "schedule"}
	for _, w := range zn.sched {
		st.Schedule = append(st.Schedule, w.String())
	}
	st.Armed = z.armedAt(zn, o, now)
	switch {
	case o.activeAt(now):
		c := *o
		st.Override, st.By = &c, "override"
		if o.Until != nil {
			u := *o.Until
			st.NextChange = &u
		}
	case zn.always:
		st.By = "always"
	default:
		if t, ok := z.nextChange(zn, now); ok {
			st.NextChange = &t
		}
	}
	return st, nil
}

func (z *Zones) nextChange(zn *zone, now time.Time) (time.Time, bool) {
	if zn.always || len(zn.sched) == 0 {
		return time.Time{}, false
	}
	return zn.sched.NextChange(now.In(z.opts.Location))
}

// Set records a guard's override: armed or disarmed until the given time.
// A zero until means until the schedule next changes the zone's state by
// itself (indefinitely for a zone whose schedule never changes). It is
// persisted before it takes effect and audited.
func (z *Zones) Set(name string, armed bool, until time.Time, actor, note string) (State, error) {
	zn, ok := z.zones[name]
	if !ok {
		return State{}, fmt.Errorf("%w: %q", ErrUnknownZone, name)
	}
	now := z.opts.Now()
	if until.IsZero() {
		if t, ok := z.nextChange(zn, now); ok {
			until = t
		}
	} else if !until.After(now) {
		return State{}, fmt.Errorf("%w: %s", ErrPast, until.Format(time.RFC3339))
	}
	o := &Override{Armed: armed, By: actor, At: now.UTC(), Note: note}
	if !until.IsZero() {
		u := until.UTC()
		o.Until = &u
	}
	action := "zone.disarm"
	if armed {
		action = "zone.arm"
	}
	err := z.opts.DB.Update(func(tx *bolt.Tx) error {
		v, err := json.Marshal(o)
		if err != nil {
			return err
		}
		return tx.Bucket(bucket).Put([]byte(name), v)
	})
	z.audit(action, name, actor, map[string]any{"until": o.Until, "note": note}, err)
	if err != nil {
		return State{}, fmt.Errorf("zones: save override of %s: %w", name, err)
	}
	z.mu.Lock()
	z.overrides[name] = o
	z.mu.Unlock()
	z.log.Info("zone override", "zone", name, "armed", armed, "until", o.Until, "by", actor)
	return z.State(name)
}

// Clear removes a zone's override: the schedule decides again.
func (z *Zones) Clear(name, actor, note string) (State, error) {
	if _, ok := z.zones[name]; !ok {
		return State{}, fmt.Errorf("%w: %q", ErrUnknownZone, name)
	}
	err := z.opts.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(name)) })
	z.audit("zone.auto", name, actor, map[string]any{"note": note}, err)
	if err != nil {
		return State{}, fmt.Errorf("zones: clear override of %s: %w", name, err)
	}
	z.mu.Lock()
	delete(z.overrides, name)
	z.mu.Unlock()
	return z.State(name)
}

func (z *Zones) audit(action, target, actor string, detail map[string]any, err error) {
	if z.opts.Audit == nil {
		return
	}
	e := audit.Entry{Actor: actor, Action: action, Target: target, Detail: detail}
	if err != nil {
		e.Error = err.Error()
	}
	if _, aerr := z.opts.Audit.Record(e); aerr != nil {
		z.log.Error("zones: audit record failed", "err", aerr)
	}
}

// EventZone is the zone of an event: data.zone, else location.zone.
func EventZone(e *event.Event) string {
	if s, ok := e.Data["zone"].(string); ok && s != "" {
		return s
	}
	return e.Location.Zone
}

// React is the ingest stage (ingest.Actor). It never blocks: a map lookup
// and a schedule check per intrusion.
func (z *Zones) React(_ config.Device, _ drivers.Message, evs []*event.Event) []*event.Event {
	for _, e := range evs {
		if e.Type != event.PerimeterIntr {
			continue // perimeter.tamper always stays as it is
		}
		name := EventZone(e)
		armed, known := z.Armed(name, e.Time)
		if !known {
			continue // an unconfigured zone is always armed: leave the driver's severity
		}
		if e.Data == nil {
			e.Data = map[string]any{}
		}
		e.Data["armed"] = armed
		if armed {
			e.Severity = event.Critical
		} else {
			e.Severity = event.Info
		}
		z.intrusions.WithLabelValues(name, fmt.Sprint(armed)).Inc()
	}
	return evs
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Check validates alarms.zones for config.Load, naming the key path.
func Check(c *config.Config) []config.Problem { return check(c.Alarms.Zones) }

func check(zs []config.ArmZone) []config.Problem {
	var ps []config.Problem
	add := func(key, f string, a ...any) {
		ps = append(ps, config.Problem{Key: key, Msg: fmt.Sprintf(f, a...)})
	}
	seen := map[string]string{}
	for i, zc := range zs {
		k := fmt.Sprintf("alarms.zones[%d]", i)
		switch prev, dup := seen[zc.Name]; {
		case zc.Name == "":
			add(k+".name", "is required")
		case !nameRe.MatchString(zc.Name):
			add(k+".name", "%q must be letters, digits, '-', '_' or '.' (it is a URL path and metric label)", zc.Name)
		case dup:
			add(k+".name", "duplicate zone %q (also %s)", zc.Name, prev)
		default:
			seen[zc.Name] = k
		}
		for j, w := range zc.Armed {
			wk := fmt.Sprintf("%s.armed[%d]", k, j)
			bad := false
			for d, day := range w.Days {
				if _, err := schedule.ParseDay(day); err != nil {
					add(fmt.Sprintf("%s.days[%d]", wk, d), "%v", err)
					bad = true
				}
			}
			if _, err := schedule.ParseClock(w.From); err != nil {
				add(wk+".from", "%v", err)
				bad = true
			}
			if _, err := schedule.ParseClock(w.To); err != nil {
				add(wk+".to", "%v", err)
				bad = true
			}
			if bad {
				continue
			}
			if _, err := schedule.New(w.Days, w.From, w.To); err != nil {
				add(wk, "%v", err)
			}
		}
	}
	return ps
}
