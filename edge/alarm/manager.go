package alarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/i18n"
	"github.com/smartcommunity/warden/edge/store"
)

// Sink records the alarm.* events; *store.Store implements it.
type Sink interface {
	Append(ctx context.Context, evs ...*event.Event) error
}

// Source is the committed event log Run follows; *store.Store implements it.
type Source interface {
	Follow(ctx context.Context, o store.FollowOptions, fn func(context.Context, []event.Event) (uint64, error)) error
	LastSeq() uint64
}

// Defaults.
const (
	DefaultEscalateAfter  = 2 * time.Minute
	DefaultMaxEscalations = 3
	DefaultKeepResolved   = 90 * 24 * time.Hour
	MaxNoteBytes          = 4096
	maxTimeline           = 200
	maxMedia              = 20
)

// Options configure a Manager. DB is required; the rest have defaults.
type Options struct {
	DB            *bbolt.DB // the gateway's bbolt file (store.DB()); buckets "alarms", "alarms.*"
	Gateway, Site string
	// EscalateAfter is how long an alarm may stay open (not acknowledged)
	// before it is escalated, and then again between escalations.
	EscalateAfter  time.Duration // (2m) config alarms.escalate_after
	MaxEscalations int           // (3) highest escalation level
	KeepResolved   time.Duration // (90 days) resolved alarms older than this are deleted
	Policy         *Policy       // nil = DefaultPolicy()
	// Priorities overrides the priority of types or groups ("gate.*");
	// config alarms.priorities.
	Priorities map[string]int
	// Duty is the roster an assignment not accepted within AcceptWithin
	// (default EscalateAfter) passes along, in order, wrapping round.
	Duty         []string
	AcceptWithin time.Duration
	// Places labels buildings and zones in titles (config places).
	Places i18n.Places
	// Sink records alarm.* events. Nil records none.
	Sink Sink
	// Source, when set, is followed by Run: every committed event is passed
	// to Observe in seq order, resuming after a restart where it stopped.
	Source Source
	// Notify is called for every change, in order, after the transaction
	// that made it durable (followed events commit a batch at a time), with
	// the manager's lock held: it must not block (queue, or use a
	// non-waiting publish).
	Notify     []func(Change)
	Audit      *audit.Log // ack and resolve are audited with the actor; nil = not audited
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

var (
	bktAlarms = []byte("alarms")        // id → Alarm JSON (with timeline)
	bktActive = []byte("alarms.active") // dedup key → id of the open or acknowledged alarm
	bktMeta   = []byte("alarms.meta")   // cursor; its sequence is the alarm Rev
	bktOutbox = []byte("alarms.outbox") // rev → alarm.* event not yet in the Sink
	keyCursor = []byte("cursor")
)

// Manager owns the alarms. All methods are safe for concurrent use.
type Manager struct {
	o      Options
	policy Policy
	log    *slog.Logger
	met    *metrics
	now    func() time.Time

	mu         sync.Mutex
	active     map[string]*Alarm // by key: open and acknowledged
	resolvedN  int
	cursor     uint64 // last seq passed to Observe
	saved      uint64 // cursor as persisted
	savedAt    time.Time
	pending    []pendingEvent // alarm.* events in the outbox, in rev order
	notify     []func(Change)
	sinkFailed bool
	// volatile are alarms opened from memory (unstored.go) by key; held are
	// events kept for the Sink until it takes them.
	volatile map[string]*Alarm
	held     []*event.Event
	unstored chan unstoredReq
}

type pendingEvent struct {
	rev uint64
	ev  *event.Event
}

// New opens the alarm buckets in o.DB and loads the open alarms.
func New(o Options) (*Manager, error) {
	if o.DB == nil {
		return nil, errors.New("alarm: no database")
	}
	if o.EscalateAfter <= 0 {
		o.EscalateAfter = DefaultEscalateAfter
	}
	if o.MaxEscalations <= 0 {
		o.MaxEscalations = DefaultMaxEscalations
	}
	if o.AcceptWithin <= 0 {
		o.AcceptWithin = o.EscalateAfter
	}
	if o.KeepResolved <= 0 {
		o.KeepResolved = DefaultKeepResolved
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := DefaultPolicy()
	if o.Policy != nil {
		p = *o.Policy
	}
	for _, t := range p.WarningTypes {
		if !validPattern(t) {
			return nil, fmt.Errorf("alarm: policy: %q is not an event type or a group pattern like \"wristband.*\"", t)
		}
	}
	for c, t := range p.Clears {
		if !event.Known(c) || !event.Known(t) {
			return nil, fmt.Errorf("alarm: policy: clear %s → %s: unknown event type", c, t)
		}
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		o: o, policy: p, met: met, now: time.Now,
		log:    o.Logger.With("component", "alarm"),
		active: map[string]*Alarm{},
		notify: slices.Clone(o.Notify),

		volatile: map[string]*Alarm{},
		unstored: make(chan unstoredReq, 256),
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	m.updateGauge()
	return m, nil
}

// load creates the buckets and reads the active alarms, the cursor and the outbox.
func (m *Manager) load() error {
	return m.o.DB.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bktAlarms, bktActive, bktMeta, bktOutbox} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("alarm: create bucket %s: %w", b, err)
			}
		}
		all, act := tx.Bucket(bktAlarms), tx.Bucket(bktActive)
		err := act.ForEach(func(k, id []byte) error {
			a, err := decodeAlarm(all.Get(id))
			if err != nil {
				return fmt.Errorf("alarm: active %s → %s: %w", k, id, err)
			}
			if a.Priority == 0 { // stored before priorities existed
				a.Priority = Priority(m.o.Priorities, a.Type)
			}
			m.active[a.Key] = a
			return nil
		})
		if err != nil {
			return err
		}
		m.resolvedN = all.Stats().KeyN - len(m.active)
		meta := tx.Bucket(bktMeta)
		if v := meta.Get(keyCursor); v != nil {
			m.cursor = getU64(v)
		} else if m.o.Source != nil {
			// First start: history before now is not re-alarmed.
			m.cursor = m.o.Source.LastSeq()
			if err := meta.Put(keyCursor, u64(m.cursor)); err != nil {
				return err
			}
		}
		m.saved, m.savedAt = m.cursor, m.now()
		return tx.Bucket(bktOutbox).ForEach(func(k, v []byte) error {
			ev, err := decodeEvent(v)
			if err != nil {
				m.log.Error("alarm: dropping unreadable outbox entry", "rev", getU64(k), "err", err)
				return nil
			}
			m.pending = append(m.pending, pendingEvent{rev: getU64(k), ev: ev})
			return nil
		})
	})
}

// AddNotify adds a change callback (for parts built after the Manager, such
// as the MQTT client). Same contract as Options.Notify.
func (m *Manager) AddNotify(f func(Change)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notify = append(m.notify, f)
}

// Cursor is the seq of the last event passed to Observe (persisted lazily).
func (m *Manager) Cursor() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor
}

// Observe applies the default policy to a committed event: it opens an
// alarm, counts a repeat, or notes that the condition cleared. Call it for
// every committed event in seq order (Run does when Options.Source is set,
// committing a page of events at a time); events at or below the cursor are
// ignored, so replays are harmless. It returns the alarm touched, if any,
// and whether it was newly opened.
func (m *Manager) Observe(ctx context.Context, e event.Event) (*Alarm, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.begin()
	a, opened := b.observe(&e)
	if err := b.commit(ctx); err != nil {
		return nil, false, err
	}
	if a == nil {
		return nil, false, nil
	}
	return a.clone(), opened, nil
}

// Raise opens an alarm for e under key (empty = Key(e)) with severity sev
// (empty = the event's), whatever the policy says; a repeat while the key's
// alarm is open or acknowledged is counted on it. This is the rules'
// raise_alarm.
func (m *Manager) Raise(ctx context.Context, e event.Event, key string, sev event.Severity) (*Alarm, error) {
	if key == "" {
		key = Key(&e)
	}
	if sev == "" {
		sev = e.Severity
	}
	if !sev.Valid() {
		return nil, fmt.Errorf("alarm: raise %s: bad severity %q", key, sev)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.begin()
	a, _ := b.raise(&e, key, sev)
	if err := b.commit(ctx); err != nil {
		return nil, err
	}
	return a.clone(), nil
}

// Ack acknowledges an open alarm: a guard has seen it and is on it.
func (m *Manager) Ack(ctx context.Context, id, actor, note string) (*Alarm, error) {
	note = strings.TrimSpace(note)
	if err := checkNote(note); err != nil {
		return nil, err
	}
	return m.transition(ctx, id, actor, func(a *Alarm, now time.Time) (string, error) {
		if a.State != Open {
			return "", fmt.Errorf("alarm %s is %s, only an open alarm can be acknowledged: %w", a.ID, a.State, ErrConflict)
		}
		a.State = Acknowledged
		a.Acknowledged = &Step{At: now, By: actor, Note: note}
		a.addEntry(Entry{At: now, Action: ActAcknowledged, By: actor, Note: note})
		return ActAcknowledged, nil
	}, note)
}

// Resolve closes an open or acknowledged alarm. The note is required: the
// guard says what was done.
func (m *Manager) Resolve(ctx context.Context, id, actor, note string) (*Alarm, error) {
	return m.ResolveAs(ctx, id, actor, note, "")
}

// ResolveAs is Resolve with an outcome (Outcomes; "" = not said).
func (m *Manager) ResolveAs(ctx context.Context, id, actor, note, outcome string) (*Alarm, error) {
	if outcome != "" && !slices.Contains(Outcomes, outcome) {
		return nil, fmt.Errorf("outcome %q is not one of %s: %w", outcome, strings.Join(Outcomes, ", "), ErrBadRequest)
	}
	note = strings.TrimSpace(note)
	if note == "" {
		return nil, fmt.Errorf("resolve alarm %s: say what was done: %w", id, ErrNoteRequired)
	}
	if err := checkNote(note); err != nil {
		return nil, err
	}
	return m.transition(ctx, id, actor, func(a *Alarm, now time.Time) (string, error) {
		if a.State == Resolved {
			return "", fmt.Errorf("alarm %s is already resolved: %w", a.ID, ErrConflict)
		}
		a.State = Resolved
		a.Resolved = &Step{At: now, By: actor, Note: note}
		a.Outcome = outcome
		e := Entry{At: now, Action: ActResolved, By: actor, Note: note}
		if outcome != "" {
			e.Code, e.Params = "outcome", map[string]string{"outcome": outcome}
		}
		a.addEntry(e)
		return ActResolved, nil
	}, note)
}

// RaiseFor is Raise, then Assign to assign (by "rule") unless it is empty,
// the alarm is resolved or already that guard's: what a rule's raise_alarm
// does.
func (m *Manager) RaiseFor(ctx context.Context, e event.Event, key string, sev event.Severity, assign string) error {
	a, err := m.Raise(ctx, e, key, sev)
	if err != nil || assign == "" || a.State == Resolved || (a.Assigned != nil && a.Assigned.To == assign) {
		return err
	}
	_, err = m.Assign(ctx, a.ID, "rule", assign, "")
	return err
}

// Assign gives an open or acknowledged alarm to a named guard, who accepts
// it. An assignment not accepted within AcceptWithin passes to the next
// guard of the duty roster.
func (m *Manager) Assign(ctx context.Context, id, actor, to, note string) (*Alarm, error) {
	to, note = strings.TrimSpace(to), strings.TrimSpace(note)
	if to == "" || len(to) > 64 || !utf8.ValidString(to) {
		return nil, fmt.Errorf("assign: \"to\" must name a guard (1..64 bytes): %w", ErrBadRequest)
	}
	if err := checkNote(note); err != nil {
		return nil, err
	}
	return m.transition(ctx, id, actor, func(a *Alarm, now time.Time) (string, error) {
		if a.State == Resolved {
			return "", fmt.Errorf("alarm %s is resolved: %w", a.ID, ErrConflict)
		}
		a.Assigned = &Assignment{To: to, By: actor, At: now, Note: note}
		a.addEntry(Entry{At: now, Action: ActAssigned, By: actor, Note: note, Code: "assigned", Params: map[string]string{"to": to}})
		return ActAssigned, nil
	}, note)
}

// Accept is the assigned guard taking the alarm on. It acknowledges an
// open alarm too.
func (m *Manager) Accept(ctx context.Context, id, actor string) (*Alarm, error) {
	return m.transition(ctx, id, actor, func(a *Alarm, now time.Time) (string, error) {
		switch {
		case a.State == Resolved:
			return "", fmt.Errorf("alarm %s is resolved: %w", a.ID, ErrConflict)
		case a.Assigned == nil:
			return "", fmt.Errorf("alarm %s is not assigned: %w", a.ID, ErrConflict)
		case a.Assigned.To != actor:
			return "", fmt.Errorf("alarm %s is assigned to %s: %w", a.ID, a.Assigned.To, ErrNotAssignee)
		case a.Assigned.AcceptedAt != nil:
			return "", fmt.Errorf("alarm %s is already accepted: %w", a.ID, ErrConflict)
		}
		a.Assigned.AcceptedAt = &now
		if a.State == Open {
			a.State = Acknowledged
			a.Acknowledged = &Step{At: now, By: actor}
		}
		a.addEntry(Entry{At: now, Action: ActAccepted, By: actor})
		return ActAccepted, nil
	}, "")
}

// OnScene records that a guard reached the place. It acknowledges an open
// alarm too.
func (m *Manager) OnScene(ctx context.Context, id, actor, note string) (*Alarm, error) {
	note = strings.TrimSpace(note)
	if err := checkNote(note); err != nil {
		return nil, err
	}
	return m.transition(ctx, id, actor, func(a *Alarm, now time.Time) (string, error) {
		if a.State == Resolved {
			return "", fmt.Errorf("alarm %s is resolved: %w", a.ID, ErrConflict)
		}
		a.OnScene = &Step{At: now, By: actor, Note: note}
		if a.State == Open {
			a.State = Acknowledged
			a.Acknowledged = &Step{At: now, By: actor, Note: note}
		}
		a.addEntry(Entry{At: now, Action: ActOnScene, By: actor, Note: note})
		return ActOnScene, nil
	}, note)
}

// transitionEvents maps a guard's action to the alarm.* event it records
// and the audit verb.
var transitionEvents = map[string][2]string{
	ActAcknowledged: {event.AlarmAcked, "alarm.ack"},
	ActResolved:     {event.AlarmResolved, "alarm.resolve"},
	ActAssigned:     {event.AlarmAssigned, "alarm.assign"},
	ActAccepted:     {event.AlarmAccepted, "alarm.accept"},
	ActOnScene:      {event.AlarmOnScene, "alarm.on_scene"},
}

func checkNote(note string) error {
	if len(note) > MaxNoteBytes || !utf8.ValidString(note) {
		return fmt.Errorf("note must be UTF-8 of at most %d bytes: %w", MaxNoteBytes, ErrBadNote)
	}
	return nil
}

func (m *Manager) transition(ctx context.Context, id, actor string, apply func(*Alarm, time.Time) (string, error), note string) (*Alarm, error) {
	if actor == "" {
		actor = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.get(id)
	if err != nil {
		return nil, err
	}
	if cur := m.active[a.Key]; cur != nil && cur.ID == a.ID {
		a = cur.clone() // the in-memory one is the latest
	}
	before := a.cloneHead()
	now := m.now().UTC()
	action, err := apply(a, now)
	if err != nil {
		return nil, err
	}
	a.UpdatedAt = now
	ev := transitionEvents[action]
	wasAcked := before.Acknowledged != nil
	b := m.begin()
	b.add(a) // a is already a private copy
	b.stage(a, action, &eventSpec{typ: ev[0], actor: actor, note: note})
	if err := b.commit(ctx); err != nil {
		return nil, err
	}
	if !wasAcked && a.Acknowledged != nil {
		m.met.ackSeconds.Observe(now.Sub(a.OpenedAt).Seconds())
		m.met.timeToAck.WithLabelValues(a.Type).Observe(now.Sub(a.OpenedAt).Seconds())
	}
	if action == ActResolved {
		m.met.timeToResolve.WithLabelValues(a.Type).Observe(now.Sub(a.OpenedAt).Seconds())
		outcome := a.Outcome
		if outcome == "" {
			outcome = "unspecified"
		}
		m.met.outcomes.WithLabelValues(a.Type, a.Source.ID, outcome).Inc()
	}
	if m.o.Audit != nil {
		verb := ev[1]
		if _, err := m.o.Audit.Record(audit.Entry{Actor: actor, Action: verb, Target: a.ID,
			Detail: map[string]any{"note": note, "key": a.Key, "type": a.Type}}); err != nil {
			m.log.Error("alarm: audit", "alarm", a.ID, "err", err)
		}
	}
	return a.clone(), nil
}

// escalateDue escalates every open alarm whose time is up.
func (m *Manager) escalateDue(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UTC()
	var due []*Alarm
	for _, a := range m.active {
		if a.State != Open || a.EscalationLevel >= m.o.MaxEscalations {
			continue
		}
		since := a.OpenedAt
		if a.EscalatedAt != nil {
			since = *a.EscalatedAt
		}
		if now.Sub(since) >= m.o.EscalateAfter {
			due = append(due, a)
		}
	}
	slices.SortFunc(due, func(x, y *Alarm) int { return strings.Compare(x.ID, y.ID) })
	b := m.begin()
	for _, a := range due {
		n := b.edit(a)
		n.Escalated = true
		n.EscalationLevel++ // severity and priority stay: escalation is within the class
		n.EscalatedAt = &now
		n.UpdatedAt = now
		note := fmt.Sprintf("not acknowledged within %s (level %d)", m.o.EscalateAfter, n.EscalationLevel)
		n.addEntry(Entry{At: now, Action: ActEscalated, By: "gateway", Note: note, Code: "escalated.unacked",
			Params: map[string]string{"after": m.o.EscalateAfter.String(), "level": fmt.Sprint(n.EscalationLevel)}})
		b.stage(n, ActEscalated, &eventSpec{typ: event.AlarmEscalated, actor: "gateway", note: note})
	}
	m.passUnaccepted(b, now)
	if err := b.commit(ctx); err != nil {
		m.log.Error("alarm: escalate", "alarms", len(due), "err", err)
		return
	}
	for _, n := range b.order {
		if n.EscalatedAt == nil || !n.EscalatedAt.Equal(now) {
			m.log.Warn("alarm assignment passed on", "alarm", n.ID, "to", n.Assigned.To)
			continue
		}
		m.met.escalations.Inc()
		m.log.Warn("alarm escalated", "alarm", n.ID, "key", n.Key, "level", n.EscalationLevel, "severity", n.Severity)
	}
}

// passUnaccepted hands every assignment not accepted within AcceptWithin
// to the next guard on the duty roster (or, without one, restarts its
// clock and says so), within batch b; m.mu is held.
func (m *Manager) passUnaccepted(b *batch, now time.Time) {
	var due []*Alarm
	for _, a := range m.active {
		if as := a.Assigned; as != nil && as.AcceptedAt == nil && a.State != Resolved && now.Sub(as.At) >= m.o.AcceptWithin {
			due = append(due, a)
		}
	}
	slices.SortFunc(due, func(x, y *Alarm) int { return strings.Compare(x.ID, y.ID) })
	for _, a := range due {
		n := b.edit(a)
		from := n.Assigned.To
		to := from
		if i := slices.Index(m.o.Duty, from); len(m.o.Duty) > 0 {
			to = m.o.Duty[(i+1)%len(m.o.Duty)] // not on the roster (i = -1): its first guard
		}
		note := fmt.Sprintf("%s did not accept within %s; assigned to %s", from, m.o.AcceptWithin, to)
		n.Assigned = &Assignment{To: to, By: "gateway", At: now, Note: note}
		n.UpdatedAt = now
		n.addEntry(Entry{At: now, Action: ActAssigned, By: "gateway", Note: note, Code: "assign.passed",
			Params: map[string]string{"from": from, "to": to, "after": m.o.AcceptWithin.String()}})
		b.stage(n, ActAssigned, &eventSpec{typ: event.AlarmAssigned, actor: "gateway", note: note})
	}
}

// eventSpec says which alarm.* event a change records.
type eventSpec struct {
	typ, actor, note string
}

// call runs one Notify callback; a panic in it is logged, not spread.
func (m *Manager) call(f func(Change), c Change) {
	defer func() {
		if v := recover(); v != nil {
			m.met.errors.WithLabelValues("notify").Inc()
			m.log.Error("alarm: notify panicked", "alarm", c.Alarm.ID, "panic", fmt.Sprint(v))
		}
	}()
	f(c)
}

// flush hands the outbox to the Sink in rev order and empties it. On
// failure the events stay for the next try (Run retries), so the platform
// gets every alarm.* event at least once (their ids make repeats harmless).
func (m *Manager) flush(ctx context.Context) {
	if len(m.pending) == 0 || m.o.Sink == nil {
		return
	}
	evs := make([]*event.Event, len(m.pending))
	for i, p := range m.pending {
		evs[i] = p.ev
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := m.o.Sink.Append(sctx, evs...)
	cancel()
	if err != nil {
		m.met.errors.WithLabelValues("sink").Inc()
		if !m.sinkFailed {
			m.log.Warn("alarm: recording alarm events failed; will retry", "pending", len(evs), "err", err)
		}
		m.sinkFailed = true
		for _, e := range evs {
			e.Seq = 0
		}
		return
	}
	if m.sinkFailed {
		m.log.Info("alarm: alarm events recorded again", "pending", len(evs))
	}
	m.sinkFailed = false
	err = m.o.DB.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktOutbox)
		for _, p := range m.pending {
			if err := b.Delete(u64(p.rev)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// They are in the Sink; a later flush repeats them with the same ids.
		m.met.errors.WithLabelValues("persist").Inc()
		m.log.Warn("alarm: clear outbox", "err", err)
		return
	}
	m.pending = m.pending[:0]
}

// alarmEvent builds the alarm.* event of a change. Source and location are
// the alarm's, so the device's history shows its alarms too.
func (m *Manager) alarmEvent(a *Alarm, s *eventSpec) *event.Event {
	data := map[string]any{
		"alarm_id": a.ID, "rev": a.Rev, "key": a.Key, "alarm_type": a.Type, "state": string(a.State),
		"severity": string(a.Severity), "priority": a.Priority, "title": a.Title, "count": a.Count,
		"escalation_level": a.EscalationLevel, "first_event_id": a.FirstEventID,
		"opened_at": a.OpenedAt.Format(time.RFC3339Nano),
	}
	if s.actor != "" {
		data["actor"] = s.actor
	}
	if a.Assigned != nil {
		data["assigned_to"] = a.Assigned.To
	}
	if a.Outcome != "" {
		data["outcome"] = a.Outcome
	}
	if s.note != "" {
		data["note"] = s.note
	}
	e, _ := event.Make(event.Origin{Gateway: m.o.Gateway, Site: m.o.Site, Source: a.Source, Location: a.Location, Time: a.UpdatedAt}, s.typ, "", data)
	return e
}

// addEntry appends to the timeline, dropping the oldest repeated or cleared
// entries beyond maxTimeline; lifecycle entries are always kept.
//
// A flapping condition (a detector near its threshold) alternates cleared
// and repeated; each new one is folded into the last entry of its kind
// among the last two, counted in Repeats, at its latest time. The alarm is
// stored whole with every change, and a timeline of 200 flap entries made
// each change encode and write about 30 KB.
func (a *Alarm) addEntry(e Entry) {
	if flap(e.Action) {
		for back := 1; back <= 2 && back <= len(a.Timeline); back++ {
			x := &a.Timeline[len(a.Timeline)-back]
			if !flap(x.Action) {
				break
			}
			if x.Action == e.Action {
				x.At, x.EventID = e.At, e.EventID
				x.Repeats = max(x.Repeats, 1) + max(e.Repeats, 1)
				return
			}
		}
	}
	a.Timeline = append(a.Timeline, e)
	for len(a.Timeline) > maxTimeline {
		i := slices.IndexFunc(a.Timeline, func(e Entry) bool { return e.Action == ActRepeated || e.Action == ActCleared })
		if i < 0 || i == len(a.Timeline)-1 {
			return
		}
		a.Timeline = slices.Delete(a.Timeline, i, i+1)
	}
}

func flap(action string) bool { return action == ActRepeated || action == ActCleared }

func (a *Alarm) addMedia(ms []event.Media) {
	for _, md := range ms {
		if len(a.Media) >= maxMedia {
			return
		}
		if !slices.ContainsFunc(a.Media, func(x event.Media) bool { return x.URL == md.URL }) {
			a.Media = append(a.Media, md)
		}
	}
}

func (m *Manager) updateGauge() {
	var open, acked int
	for _, a := range m.active {
		if a.State == Open {
			open++
		} else {
			acked++
		}
	}
	m.met.alarms.WithLabelValues(string(Open)).Set(float64(open))
	m.met.alarms.WithLabelValues(string(Acknowledged)).Set(float64(acked))
	m.met.alarms.WithLabelValues(string(Resolved)).Set(float64(m.resolvedN))
	m.met.unstored.Set(float64(len(m.volatile)))
}

// saveCursor persists the cursor when it moved (at most every few seconds
// unless force), so a restart re-reads only a few events.
func (m *Manager) saveCursor(force bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cursor <= m.saved || (!force && m.now().Sub(m.savedAt) < 5*time.Second) {
		return
	}
	c := m.cursor
	if err := m.o.DB.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Put(keyCursor, u64(c)) }); err != nil {
		m.met.errors.WithLabelValues("persist").Inc()
		m.log.Warn("alarm: save cursor", "err", err)
		return
	}
	m.saved, m.savedAt = c, m.now()
}
