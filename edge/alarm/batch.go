package alarm

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// Bounds of one batch of followed events: bbolt has one writer, shared with
// the store's group commits, so a burst costs one transaction per page
// rather than one per event, and no batch holds the lock for long.
const (
	maxBatchEvents = 500
	maxBatchWork   = 50 * time.Millisecond
)

// batch stages changes in private copies of the alarms and persists them in
// one transaction with the cursor and their alarm.* events; only then do
// the manager's memory, the Sink and Notify see them. m.mu is held from
// begin to commit.
type batch struct {
	m       *Manager
	work    map[string]*Alarm // key → this batch's copy of the alarm it changed last
	order   []*Alarm          // changed alarms, first change first
	changes []change
	cursor  uint64 // highest seq observed in the batch
}

// change is one alarm change, in the order made.
type change struct {
	a      *Alarm // the batch's copy (its final state is persisted)
	snap   *Alarm // the alarm just after this change, without timeline; nil when it makes no news
	action string // "" = no notification
	spec   *eventSpec
	ev     *event.Event // the alarm.* event, built in the transaction
}

func (m *Manager) begin() *batch {
	return &batch{m: m, work: map[string]*Alarm{}}
}

// active is the open or acknowledged alarm of key as this batch left it.
func (b *batch) active(key string) *Alarm {
	if a, ok := b.work[key]; ok {
		if a.State == Resolved {
			return nil
		}
		return a
	}
	return b.m.active[key]
}

// edit returns the batch's copy of a, copying it on first use so the
// manager's alarms stay as committed until the batch is.
func (b *batch) edit(a *Alarm) *Alarm {
	if w := b.work[a.Key]; w != nil && w.ID == a.ID {
		return w
	}
	w := a.clone()
	b.add(w)
	return w
}

// add takes a new alarm into the batch.
func (b *batch) add(a *Alarm) {
	b.work[a.Key] = a
	b.order = append(b.order, a)
}

// stage records a change just made to a (the batch's copy).
func (b *batch) stage(a *Alarm, action string, spec *eventSpec) {
	c := change{a: a, action: action, spec: spec}
	if action != "" || spec != nil {
		c.snap = a.cloneHead()
	}
	b.changes = append(b.changes, c)
}

// observe is Observe within the batch. It returns the batch's copy of the
// alarm touched, if any, and whether it was opened.
func (b *batch) observe(e *event.Event) (*Alarm, bool) {
	if e.Seq != 0 && e.Seq <= max(b.m.cursor, b.cursor) {
		return nil, false
	}
	b.cursor = max(b.cursor, e.Seq)
	p := &b.m.policy
	if e.Type == event.MediaAdded {
		// Evidence that was not ready at detection joins the alarm its
		// event opened or repeated, if that alarm is still active.
		typ, _ := e.Data["event_type"].(string)
		a := b.active(typ + "/" + e.Source.ID)
		if a == nil || len(e.Media) == 0 {
			return nil, false
		}
		now := b.m.now().UTC()
		n := b.edit(a)
		n.addMedia(e.Media)
		n.UpdatedAt = now
		n.addEntry(Entry{At: now, Action: ActMedia, EventID: e.ID})
		b.stage(n, ActMedia, nil)
		return n, false
	}
	if target, ok := p.Clears[e.Type]; ok {
		a := b.active(target + "/" + e.Source.ID)
		if a == nil {
			return nil, false
		}
		now := b.m.now().UTC()
		n := b.edit(a)
		n.ClearedAt = &now
		n.UpdatedAt = now
		n.addEntry(Entry{At: now, Action: ActCleared, EventID: e.ID})
		b.stage(n, ActCleared, nil)
		return n, false
	}
	if !p.raises(e) {
		return nil, false
	}
	return b.raise(e, Key(e), e.Severity)
}

// raise opens an alarm under key or counts a repeat on the active one.
func (b *batch) raise(e *event.Event, key string, sev event.Severity) (*Alarm, bool) {
	now := b.m.now().UTC()
	if a := b.active(key); a != nil {
		n := b.edit(a)
		n.Count++
		n.LastEventID = e.ID
		n.LastSeq = max(n.LastSeq, e.Seq)
		n.UpdatedAt = now
		n.ClearedAt = nil
		n.addMedia(e.Media)
		rose := sev.Rank() > n.Severity.Rank()
		if rose {
			n.Severity = sev
		}
		if last := len(n.Timeline) - 1; last >= 0 && n.Timeline[last].Action == ActRepeated {
			n.Timeline[last].At, n.Timeline[last].EventID = now, e.ID
			n.Timeline[last].Repeats++
		} else {
			n.addEntry(Entry{At: now, Action: ActRepeated, EventID: e.ID, Repeats: 1})
		}
		action := ""
		if rose {
			action = ActRepeated // a repeat is news only when it is worse
		}
		b.stage(n, action, nil)
		return n, false
	}
	n := &Alarm{
		ID: event.NewID(now), Key: key, Type: e.Type, Severity: sev, State: Open,
		Priority: Priority(b.m.o.Priorities, e.Type),
		Title:    title(e, b.m.o.Places), Location: e.Location, Floor: floorOf(e), Reason: reasonOf(e), Source: e.Source,
		FirstEventID: e.ID, LastEventID: e.ID, LastSeq: e.Seq, Count: 1,
		OpenedAt: now, UpdatedAt: now, Media: []event.Media{},
		Timeline: []Entry{{At: now, Action: ActOpened, EventID: e.ID}},
	}
	if v := b.m.volatile[key]; v != nil {
		// shown from memory while the disk failed: same alarm, now stored
		n.ID, n.OpenedAt, n.Timeline[0].At = v.ID, v.OpenedAt, v.OpenedAt
	}
	n.addMedia(e.Media)
	b.add(n)
	b.stage(n, ActOpened, &eventSpec{typ: event.AlarmOpened})
	return n, true
}

// commit persists the batch in one transaction: every changed alarm, the
// active index, one rev per change (as if each had its own transaction),
// the alarm.* events in the outbox and the cursor. After the commit it
// updates memory and metrics, hands the events to the Sink and calls
// Notify once per change, in order. On error nothing of the batch is kept:
// the cursor stays, so the events are observed again.
func (b *batch) commit(ctx context.Context) error {
	m := b.m
	cur := max(m.cursor, b.cursor)
	if len(b.changes) == 0 {
		m.cursor = cur
		return nil
	}
	err := m.o.DB.Update(func(tx *bbolt.Tx) error {
		meta, outbox := tx.Bucket(bktMeta), tx.Bucket(bktOutbox)
		rev := meta.Sequence()
		for i := range b.changes {
			c := &b.changes[i]
			rev++
			c.a.Rev = rev
			c.ev = nil
			if c.snap == nil {
				continue
			}
			c.snap.Rev = rev
			if c.spec != nil && m.o.Sink != nil {
				c.ev = m.alarmEvent(c.snap, c.spec)
				js, err := c.ev.MarshalJSON()
				if err != nil {
					return err
				}
				if err := outbox.Put(u64(rev), js); err != nil {
					return err
				}
			}
		}
		if err := meta.SetSequence(rev); err != nil {
			return err
		}
		all, act := tx.Bucket(bktAlarms), tx.Bucket(bktActive)
		for _, a := range b.order {
			a.Unstored = false
			js, err := encodeAlarm(a)
			if err != nil {
				return err
			}
			if err := all.Put([]byte(a.ID), js); err != nil {
				return err
			}
			if a.State == Resolved {
				err = act.Delete([]byte(a.Key))
			} else {
				err = act.Put([]byte(a.Key), []byte(a.ID))
			}
			if err != nil {
				return err
			}
		}
		if cur > m.saved {
			return meta.Put(keyCursor, u64(cur))
		}
		return nil
	})
	if err != nil {
		m.met.errors.WithLabelValues("persist").Inc()
		what := b.order[0].ID
		if len(b.order) > 1 {
			what = fmt.Sprintf("%s and %d more", what, len(b.order)-1)
		}
		return fmt.Errorf("alarm %s: persist: %w", what, err)
	}
	m.cursor = cur
	if cur > m.saved {
		m.saved, m.savedAt = cur, m.now()
	}
	for _, a := range b.order {
		if v := m.volatile[a.Key]; v != nil && v.ID == a.ID {
			delete(m.volatile, a.Key)
		}
		if a.State != Resolved {
			m.active[a.Key] = a
		} else if x := m.active[a.Key]; x != nil && x.ID == a.ID {
			delete(m.active, a.Key)
		}
	}
	flush := false
	for _, c := range b.changes {
		switch c.action {
		case ActOpened, ActAcknowledged:
			m.met.transitions.WithLabelValues(string(c.snap.State)).Inc()
		case ActResolved:
			m.met.transitions.WithLabelValues(string(Resolved)).Inc()
			m.resolvedN++
		case ActEscalated:
			m.met.transitions.WithLabelValues("escalated").Inc()
		}
		if c.ev != nil {
			m.pending = append(m.pending, pendingEvent{rev: c.snap.Rev, ev: c.ev})
			flush = true
		}
	}
	m.updateGauge()
	if flush {
		m.flush(ctx)
	}
	for _, c := range b.changes {
		if c.action == "" {
			continue
		}
		n := Change{Action: c.action, Alarm: *c.snap}
		if c.ev != nil {
			cp := *c.ev // the outbox keeps the original for retries
			n.Event = &cp
		}
		for _, f := range m.notify {
			m.call(f, n)
		}
	}
	return nil
}

// observeAll observes evs (in seq order) in batches, each committed in one
// transaction. It stops at the first batch that fails; the cursor then
// stands after the last batch committed.
func (m *Manager) observeAll(ctx context.Context, evs []event.Event) error {
	for len(evs) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := m.observeBatch(ctx, evs)
		if err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// observeBatch commits a prefix of evs bounded by maxBatchEvents and
// maxBatchWork and returns its length.
func (m *Manager) observeBatch(ctx context.Context, evs []event.Event) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	b := m.begin()
	n := 0
	for n < len(evs) && n < maxBatchEvents && (n == 0 || time.Since(start) < maxBatchWork) {
		b.observe(&evs[n])
		n++
	}
	return n, b.commit(ctx)
}
