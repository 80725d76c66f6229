package alarm

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Timeline actions of the notifier (edge/notify).
const (
	ActNotified     = "notified"      // a message reached a notify target
	ActNotifyFailed = "notify_failed" // a try failed; it is retried
	ActNotifySkip   = "notify_skipped"
)

// Annotate adds e to an alarm's timeline without changing its state, and
// hands the change (action e.Action, no event) to the Notify callbacks. An
// alarm shown from memory (storage failing) is annotated in memory.
func (m *Manager) Annotate(ctx context.Context, id string, e Entry) (*Alarm, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.volatile {
		if v.ID == id {
			v.addEntry(e)
			m.announce(e.Action, v)
			return v.clone(), nil
		}
	}
	a, err := m.get(id)
	if err != nil {
		return nil, err
	}
	live := false
	if cur := m.active[a.Key]; cur != nil && cur.ID == a.ID {
		a, live = cur.clone(), true
	}
	a.addEntry(e)
	// Only the alarm's record: the active index stays as it is, so a
	// resolved alarm's note never touches a newer alarm of the same key.
	err = m.o.DB.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		rev := meta.Sequence() + 1
		if err := meta.SetSequence(rev); err != nil {
			return err
		}
		a.Rev = rev
		js, err := encodeAlarm(a)
		if err != nil {
			return err
		}
		return tx.Bucket(bktAlarms).Put([]byte(a.ID), js)
	})
	if err != nil {
		m.met.errors.WithLabelValues("persist").Inc()
		return nil, fmt.Errorf("alarm %s: annotate: %w", id, err)
	}
	if live {
		m.active[a.Key] = a
	}
	m.announce(e.Action, a)
	return a.clone(), nil
}

// announce hands a change without an event to the callbacks; m.mu is held.
func (m *Manager) announce(action string, a *Alarm) {
	c := Change{Action: action, Alarm: *a.cloneHead()}
	for _, f := range m.notify {
		m.call(f, c)
	}
}
