package alarm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

func encodeAlarm(a *Alarm) ([]byte, error) { return json.Marshal(a) }

func decodeAlarm(b []byte) (*Alarm, error) {
	if b == nil {
		return nil, ErrNotFound
	}
	var a Alarm
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decode alarm: %w", err)
	}
	if a.Media == nil {
		a.Media = []event.Media{}
	}
	return &a, nil
}

func decodeEvent(b []byte) (*event.Event, error) {
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// marshalPayload is Change.Payload: the alarm without timeline, plus action.
func marshalPayload(c Change) ([]byte, error) {
	a := c.Alarm
	a.Timeline = nil
	return json.Marshal(struct {
		Action string `json:"action"`
		Alarm
	}{c.Action, a})
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Get returns an alarm with its timeline.
func (m *Manager) Get(id string) (*Alarm, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(id)
}

// get is Get with m.mu held.
func (m *Manager) get(id string) (*Alarm, error) {
	for _, v := range m.volatile {
		if v.ID == id {
			return v.clone(), nil
		}
	}
	var a *Alarm
	err := m.o.DB.View(func(tx *bbolt.Tx) error {
		var err error
		a, err = decodeAlarm(tx.Bucket(bktAlarms).Get([]byte(id)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("alarm %q: %w", id, err)
	}
	return a, nil
}

// List returns alarms newest first, without timelines: those in state (all
// when empty) with an id below before (no bound when empty), at most limit
// (1 to 1000, default 100).
func (m *Manager) List(state State, before string, limit int) ([]Alarm, error) {
	if state != "" && !state.Valid() {
		return nil, fmt.Errorf("alarm: list: unknown state %q", state)
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	keep := func(a *Alarm) bool {
		return (state == "" || a.State == state) && (before == "" || a.ID < before)
	}
	// Unstored alarms first: they are the newest and the most urgent.
	out := append([]Alarm{}, m.unstoredList(keep)...)
	err := m.o.DB.View(func(tx *bbolt.Tx) error {
		all := tx.Bucket(bktAlarms)
		if state == Open || state == Acknowledged {
			// The active index is small; no need to walk resolved history.
			var ids []string
			_ = tx.Bucket(bktActive).ForEach(func(_, id []byte) error {
				ids = append(ids, string(id))
				return nil
			})
			slices.SortFunc(ids, func(x, y string) int { return strings.Compare(y, x) })
			for _, id := range ids {
				a, err := decodeAlarm(all.Get([]byte(id)))
				if err != nil {
					return fmt.Errorf("alarm %s: %w", id, err)
				}
				if keep(a) {
					a.Timeline = nil
					out = append(out, *a)
					if len(out) == limit {
						break
					}
				}
			}
			return nil
		}
		c := all.Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			k, v = c.Seek([]byte(before))
			if k == nil {
				k, v = c.Last()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			a, err := decodeAlarm(v)
			if err != nil {
				return fmt.Errorf("alarm %s: %w", k, err)
			}
			if keep(a) {
				a.Timeline = nil
				out = append(out, *a)
			}
		}
		return nil
	})
	return out, err
}

// prune deletes resolved alarms resolved before cutoff, oldest first, at
// most chunk per call; it reports how many went.
func (m *Manager) prune(cutoff time.Time, chunk int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	err := m.o.DB.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktAlarms).Cursor()
		// Ids are ULIDs of the opening time; an alarm opened after the cutoff
		// was resolved after it too, so the walk stops there.
		stop := []byte(event.NewID(cutoff))
		var del [][]byte
		for k, v := c.First(); k != nil && len(del) < chunk && bytes.Compare(k, stop) < 0; k, v = c.Next() {
			a, err := decodeAlarm(v)
			if err != nil || a.State != Resolved || a.Resolved == nil || !a.Resolved.At.Before(cutoff) {
				continue
			}
			del = append(del, bytes.Clone(k))
		}
		b := tx.Bucket(bktAlarms)
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	if err != nil {
		m.met.errors.WithLabelValues("persist").Inc()
		return 0, fmt.Errorf("alarm: prune: %w", err)
	}
	m.resolvedN -= n
	m.updateGauge()
	return n, nil
}
