// Package rules is the installers' rules engine: YAML rules under the
// top-level rules: key that match committed events (type, severity,
// location, source), optionally correlate them with an earlier event, and
// act (templated MQTT publish, close a valve, open a gate, sound a siren,
// raise an alarm). It runs after the commit, in seq order; the life-safety
// reactions that must not wait for storage live in edge/action.
package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// Publisher publishes an MQTT message and waits for the broker (QoS 1)
// until ctx ends; *bus.Client is one.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error
}

// Actuators sends device commands without blocking; *action.Actuators is one.
type Actuators interface {
	Send(id, action string) error
	Kind(kind string) []config.Device
}

// Alarms raises an alarm for an event under a dedup key (empty = the
// default key) with a severity (empty = the event's), and assigns it to a
// guard when assign is not empty.
type Alarms interface {
	RaiseFor(ctx context.Context, e event.Event, key string, sev event.Severity, assign string) error
}

// Options are the engine's dependencies. A nil Publisher, Actuators or
// Alarms makes the actions that need it fail (counted and logged).
type Options struct {
	Publisher Publisher
	Actuators Actuators
	Alarms    Alarms
	// Location is the time zone of suppress windows (default time.Local,
	// the box's local time).
	Location *time.Location
	// Now is the clock that decides whether an event is too old to act on.
	Now func() time.Time
	// MaxAge skips events older than this when they are processed, so a
	// restart after a long outage does not sound yesterday's sirens
	// (default 10m; negative = never skip).
	MaxAge time.Duration
	// PublishTimeout bounds one MQTT publish action (default 5s).
	PublishTimeout time.Duration
	// Commands are the actuators' command topics, which a publish action
	// may never write (a templated topic is checked when it is rendered).
	// New fills it from the config's devices.
	Commands   *drivers.CommandSpace
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// View is what templates see: the event's fields (.Type, .Severity,
// .Source.ID, .Location.Building, .Data.zone, .ID, .Seq, .Time) plus the
// rule's name, the event's zone and, for correlated rules, the earlier
// event as .Related.
type View struct {
	event.Event
	Rule    string
	Zone    string
	Related *event.Event
}

var funcs = template.FuncMap{
	"json":  toJSON,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
}

// Engine evaluates rules. Process is safe for concurrent use but meant to be
// called from one goroutine in seq order.
type Engine struct {
	rules []Rule
	opts  Options
	log   *slog.Logger

	start    uint64 // where Run begins, from StartAt
	prepared bool

	mu     sync.Mutex
	last   map[debounceKey]time.Time // last firing per rule and source
	recent [][]seen                  // per rule: candidate "after" events

	fired      *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	actionErrs *prometheus.CounterVec
}

type debounceKey struct {
	rule   int
	source event.Source
}

type seen struct {
	ev    event.Event
	place string
}

// maxRecent bounds the remembered "after" events of one correlated rule.
const maxRecent = 1024

// New checks the config's rules and builds the engine.
func New(c *config.Config, o Options) (*Engine, error) {
	rs, ps := Parse(c.Rules, c.Devices)
	if o.Commands == nil {
		o.Commands = drivers.Default.CommandSpace(c.Devices)
	}
	if len(ps) > 0 {
		for i := range ps {
			if ps[i].Line == 0 {
				ps[i].Line = c.Line(ps[i].Key)
			}
		}
		return nil, &config.Error{Path: c.Path(), Problems: ps}
	}
	return NewRules(rs, o)
}

// NewRules builds an engine from decoded rules.
func NewRules(rs []Rule, o Options) (*Engine, error) {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAge == 0 {
		o.MaxAge = 10 * time.Minute
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := promauto.With(o.Registerer)
	e := &Engine{
		rules: rs, opts: o, log: o.Logger.With("component", "rules"),
		last: map[debounceKey]time.Time{}, recent: make([][]seen, len(rs)),
		fired:      f.NewCounterVec(prometheus.CounterOpts{Name: "warden_rule_fired_total", Help: "Rule firings, by rule."}, []string{"rule"}),
		suppressed: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_rule_suppressed_total", Help: "Rule matches that did not fire, by rule and why (debounce, window, stale)."}, []string{"rule", "why"}),
		actionErrs: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_rule_action_errors_total", Help: "Rule actions that failed, by rule and action."}, []string{"rule", "action"}),
	}
	for _, r := range rs {
		e.fired.WithLabelValues(r.Name)
	}
	return e, nil
}

// Rules lists the loaded rules.
func (e *Engine) Rules() []Rule { return e.rules }

// Zone is where an event happened for zones and correlation: data.zone
// (perimeter sensors name their zone), else location.zone.
func Zone(e *event.Event) string {
	if z, ok := e.Data["zone"].(string); ok && z != "" {
		return z
	}
	return e.Location.Zone
}

// Process evaluates every rule against one committed event and runs the
// actions of those that fire. It returns when the actions are done; an MQTT
// publish waits at most PublishTimeout.
func (e *Engine) Process(ctx context.Context, ev event.Event) {
	if e.opts.MaxAge > 0 && e.opts.Now().Sub(ev.Time) > e.opts.MaxAge {
		for i := range e.rules {
			if e.rules[i].When.matches(&ev) {
				e.suppressed.WithLabelValues(e.rules[i].Name, "stale").Inc()
			}
		}
		return
	}
	type firing struct {
		rule    *Rule
		related *event.Event
	}
	var fire []firing
	e.mu.Lock()
	for i := range e.rules {
		r := &e.rules[i]
		var related *event.Event
		ok := r.When.matches(&ev)
		if ok && r.Correlate != nil {
			related = e.correlated(i, &ev)
			ok = related != nil
		}
		if r.Correlate != nil && r.Correlate.After.matches(&ev) {
			e.remember(i, ev)
		}
		if !ok {
			continue
		}
		if r.Suppress.Contains(ev.Time.In(e.opts.Location)) {
			e.suppressed.WithLabelValues(r.Name, "window").Inc()
			continue
		}
		if r.Debounce > 0 {
			k := debounceKey{i, ev.Source}
			if last, ok := e.last[k]; ok && ev.Time.Sub(last) < r.Debounce {
				e.suppressed.WithLabelValues(r.Name, "debounce").Inc()
				continue
			}
			e.last[k] = ev.Time
			e.pruneDebounce(ev.Time)
		}
		fire = append(fire, firing{r, related})
	}
	e.mu.Unlock()
	for _, f := range fire {
		e.fired.WithLabelValues(f.rule.Name).Inc()
		e.run(ctx, f.rule, ev, f.related)
	}
}

// pruneDebounce forgets firings older than their rule's window once the
// map grows, so many sources over months do not grow it without bound.
func (e *Engine) pruneDebounce(now time.Time) {
	if len(e.last) < 4096 {
		return
	}
	for k, t := range e.last {
		if now.Sub(t) >= e.rules[k.rule].Debounce {
			delete(e.last, k)
		}
	}
}

func (e *Engine) remember(i int, ev event.Event) {
	c := e.rules[i].Correlate
	l := e.recent[i]
	// Drop what is too old for any later event to correlate with.
	n := 0
	for _, s := range l {
		if ev.Time.Sub(s.ev.Time) <= c.Within {
			l[n] = s
			n++
		}
	}
	l = l[:n]
	if len(l) >= maxRecent {
		l = l[1:]
	}
	e.recent[i] = append(l, seen{ev: ev, place: place(&ev, c.Same)})
}

// correlated returns the newest remembered "after" event within the window
// and at the same place as ev, or nil.
func (e *Engine) correlated(i int, ev *event.Event) *event.Event {
	c := e.rules[i].Correlate
	p := place(ev, c.Same)
	l := e.recent[i]
	for j := len(l) - 1; j >= 0; j-- {
		s := &l[j]
		if s.ev.ID == ev.ID {
			continue
		}
		dt := ev.Time.Sub(s.ev.Time)
		if dt < 0 {
			dt = -dt // clocks of a camera and a sensor differ a little
		}
		if dt > c.Within {
			continue
		}
		if c.Same != "none" && (p == "" || s.place != p) {
			continue
		}
		a := s.ev
		return &a
	}
	return nil
}

// place is the value two events must share under correlate.same.
func place(e *event.Event, same string) string {
	switch same {
	case "zone":
		return Zone(e)
	case "building":
		return e.Location.Building
	case "unit":
		if e.Location.Unit == "" {
			return ""
		}
		return e.Location.Building + "/" + e.Location.Unit
	case "room":
		if e.Location.Room == "" {
			return ""
		}
		return e.Location.Building + "/" + e.Location.Unit + "/" + e.Location.Room
	case "source":
		return e.Source.Kind + "/" + e.Source.ID
	}
	return ""
}

func (m *Match) matches(e *event.Event) bool {
	if len(m.Types) == 0 {
		if loopType(e.Type) {
			return false
		}
	} else {
		ok := false
		for _, p := range m.Types {
			if typeMatches(p, e.Type) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.MinSeverity != "" && e.Severity.Rank() < m.MinSeverity.Rank() {
		return false
	}
	l := m.Location
	switch {
	case l.Building != "" && l.Building != e.Location.Building,
		l.Unit != "" && l.Unit != e.Location.Unit,
		l.Room != "" && l.Room != e.Location.Room,
		l.Zone != "" && l.Zone != Zone(e),
		m.SourceKind != "" && m.SourceKind != e.Source.Kind:
		return false
	}
	if m.SourceID != "" {
		if ok, _ := path.Match(m.SourceID, e.Source.ID); !ok {
			return false
		}
	}
	return true
}

// loopType is a type produced by the gateway's own reactions (alarms,
// system notices); a rule sees it only when it names it, so an alarm rule
// can never re-trigger itself.
func loopType(t string) bool {
	return strings.HasPrefix(t, "alarm.") || strings.HasPrefix(t, "system.")
}

func typeMatches(p, t string) bool {
	if loopType(t) && !loopType(p) {
		return false
	}
	switch {
	case strings.ContainsAny(p, "*?["):
		ok, _ := path.Match(p, t)
		return ok
	case strings.HasSuffix(p, "."):
		return strings.HasPrefix(t, p)
	}
	return p == t
}

// run performs a rule's actions in order; one failing does not stop the rest.
func (e *Engine) run(ctx context.Context, r *Rule, ev event.Event, related *event.Event) {
	if related != nil {
		ev.Data = maps.Clone(ev.Data)
		if ev.Data == nil {
			ev.Data = map[string]any{}
		}
		ev.Data["event_ids"] = []string{related.ID, ev.ID}
		ev.Data["correlated"] = map[string]any{"rule": r.Name, "after_id": related.ID, "after_type": related.Type}
	}
	v := &View{Event: ev, Rule: r.Name, Zone: Zone(&ev), Related: related}
	for i := range r.Then {
		a := &r.Then[i]
		target, err := e.do(ctx, a, v)
		if err != nil {
			e.actionErrs.WithLabelValues(r.Name, a.Kind).Inc()
			e.log.Warn("rule action failed", "rule", r.Name, "event", ev.ID, "type", ev.Type, "action", a.Kind, "target", target, "err", err)
			continue
		}
		e.log.Info("rule action", "rule", r.Name, "event", ev.ID, "type", ev.Type, "action", a.Kind, "target", target)
	}
}

func (e *Engine) do(ctx context.Context, a *Action, v *View) (target string, err error) {
	switch a.Kind {
	case ActPublish:
		topic, err := render(a.Topic, v)
		if err != nil {
			return "", fmt.Errorf("topic: %w", err)
		}
		if topic == "" || strings.ContainsAny(topic, "+#\x00") {
			return topic, fmt.Errorf("topic %q is empty or has wildcards", topic)
		}
		if e.opts.Commands.Actuator(topic) {
			return topic, fmt.Errorf("topic %q commands an actuator or speaks for the gateway: rules may not publish there", topic)
		}
		var payload []byte
		if a.Payload == nil {
			payload, err = v.Event.MarshalJSON()
		} else {
			var s string
			s, err = render(a.Payload, v)
			payload = []byte(s)
		}
		if err != nil {
			return topic, fmt.Errorf("payload: %w", err)
		}
		if e.opts.Publisher == nil {
			return topic, errors.New("no MQTT publisher")
		}
		pctx, cancel := context.WithTimeout(ctx, e.opts.PublishTimeout)
		defer cancel()
		return topic, e.opts.Publisher.Publish(pctx, topic, a.QoS, a.Retain, payload)
	case ActCloseValve, ActOpenGate, ActSiren:
		if e.opts.Actuators == nil {
			return "", errors.New("no actuators")
		}
		cmd := actionKinds[a.Kind].command
		if a.Kind == ActSiren {
			cmd = a.State
		}
		ids := e.targets(a, &v.Event)
		if len(ids) == 0 {
			return "", fmt.Errorf("no %s in the same %s as the event", actionKinds[a.Kind].kind, a.Same)
		}
		var errs []error
		for _, id := range ids {
			if err := e.opts.Actuators.Send(id, cmd); err != nil {
				errs = append(errs, err)
			}
		}
		return strings.Join(ids, ","), errors.Join(errs...)
	case ActRaiseAlarm:
		if e.opts.Alarms == nil {
			return "", errors.New("no alarm manager")
		}
		key := ""
		if a.Key != nil {
			if key, err = render(a.Key, v); err != nil {
				return "", fmt.Errorf("key: %w", err)
			}
		}
		return key, e.opts.Alarms.RaiseFor(ctx, v.Event, key, a.Severity, a.Assign)
	}
	return "", fmt.Errorf("unknown action %q", a.Kind)
}

// targets are the listed devices plus, with same:, every actuator of the
// kind at the event's building, unit, room or zone.
func (e *Engine) targets(a *Action, ev *event.Event) []string {
	ids := append([]string(nil), a.Devices...)
	if a.Same == "" {
		return ids
	}
	want := placeOf(ev.Location, a.Same)
	if a.Same == "zone" {
		want = Zone(ev)
	}
	if want == "" {
		return ids
	}
	var same []string
	for _, d := range e.opts.Actuators.Kind(actionKinds[a.Kind].kind) {
		if placeOf(d.Location, a.Same) == want && !slices.Contains(ids, d.ID) {
			same = append(same, d.ID)
		}
	}
	slices.Sort(same)
	return append(ids, same...)
}

func placeOf(l event.Location, same string) string {
	switch same {
	case "building":
		return l.Building
	case "unit":
		if l.Unit == "" {
			return ""
		}
		return l.Building + "/" + l.Unit
	case "room":
		if l.Room == "" {
			return ""
		}
		return l.Building + "/" + l.Unit + "/" + l.Room
	case "zone":
		return l.Zone
	}
	return ""
}

// Source is the committed event log the engine follows; *store.Store is one.
type Source interface {
	Follow(ctx context.Context, o store.FollowOptions, fn func(context.Context, []event.Event) (uint64, error)) error
	LastSeq() uint64
	Cursor(name string) (uint64, error)
	SetCursor(name string, seq uint64) error
}

// CursorName is the store cursor of the last event the rules processed.
const CursorName = "rules"

// Run follows src from the saved cursor (the end of the log on first start,
// so history never fires rules) and processes every new event in seq order
// until ctx ends.
func (e *Engine) Run(ctx context.Context, src Source) error {
	cur := e.start
	if !e.prepared {
		var err error
		if cur, err = PrepareCursor(src); err != nil {
			return err
		}
	}
	return src.Follow(ctx, store.FollowOptions{Name: "rules", Cursor: CursorName, Start: cur},
		func(ctx context.Context, evs []event.Event) (uint64, error) {
			var done uint64
			for _, ev := range evs {
				if ctx.Err() != nil {
					return done, ctx.Err()
				}
				e.Process(ctx, ev)
				done = ev.Seq
			}
			return done, nil
		})
}

// PrepareCursor fixes where the rules start: the saved cursor, or on the
// first start the end of the log (history is not acted on), saved at once
// so events committed before a crash in the next moments are not lost.
// Call it before events can be committed and hand the result to StartAt,
// so no event falls between the two; Run calls it itself otherwise.
func PrepareCursor(src Source) (uint64, error) {
	cur, err := src.Cursor(CursorName)
	if err != nil {
		return 0, fmt.Errorf("rules: read cursor: %w", err)
	}
	if cur == 0 {
		cur = src.LastSeq()
		if err := src.SetCursor(CursorName, cur); err != nil {
			return 0, fmt.Errorf("rules: save cursor: %w", err)
		}
	}
	return cur, nil
}

// StartAt makes Run begin after seq (from PrepareCursor).
func (e *Engine) StartAt(seq uint64) { e.start, e.prepared = seq, true }
