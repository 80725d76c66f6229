package alarm

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// Unstored alarms. An alarm normally opens only after its event is
// committed, so a full or failing disk would hide a leak or a valve fault
// from the guards exactly when they matter. ShowUnstored and HoldUnstored
// open such an alarm from memory at once: guards see it live (SSE, console,
// MQTT) marked unstored. When its event is committed later the alarm keeps
// its id and is stored; until then it is not escalated.

// maxHeld bounds events kept in memory waiting for the store.
const maxHeld = 1000

type unstoredReq struct {
	evs  []*event.Event
	hold bool
}

// ShowUnstored opens alarms from memory for events whose commit failed and
// that will be committed later by someone else (a device resends its
// message). It never blocks.
func (m *Manager) ShowUnstored(evs ...*event.Event) { m.queueUnstored(unstoredReq{evs: evs}) }

// HoldUnstored is ShowUnstored for events nobody else will send again (the
// gateway's own valve.fault, system.storage): the manager keeps them and
// appends them to the Sink once it takes them.
func (m *Manager) HoldUnstored(evs ...*event.Event) {
	m.queueUnstored(unstoredReq{evs: evs, hold: true})
}

func (m *Manager) queueUnstored(r unstoredReq) {
	select {
	case m.unstored <- r:
	default:
		m.met.errors.WithLabelValues("unstored").Inc()
		m.log.Error("alarm: unstored queue full; alarm not shown", "events", len(r.evs), "type", r.evs[0].Type)
	}
}

// showUnstored runs in Run's goroutine.
func (m *Manager) showUnstored(r unstoredReq) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range r.evs {
		if r.hold {
			if len(m.held) >= maxHeld {
				m.met.errors.WithLabelValues("unstored").Inc()
				m.log.Error("alarm: too many events waiting for the store; oldest dropped", "type", m.held[0].Type, "id", m.held[0].ID)
				m.held = m.held[1:]
			}
			m.held = append(m.held, e)
		}
		if !m.policy.raises(e) {
			continue
		}
		key := Key(e)
		if m.active[key] != nil || m.volatile[key] != nil {
			continue // guards see it already
		}
		now := m.now().UTC()
		a := &Alarm{
			ID: event.NewID(now), Key: key, Type: e.Type, Severity: e.Severity, State: Open,
			Priority: Priority(m.o.Priorities, e.Type), Title: title(e, m.o.Places), Reason: reasonOf(e), Location: e.Location, Source: e.Source,
			FirstEventID: e.ID, LastEventID: e.ID, Count: 1, OpenedAt: now, UpdatedAt: now,
			Media: []event.Media{}, Unstored: true,
			Timeline: []Entry{{At: now, Action: ActOpened, EventID: e.ID, Note: "not stored yet: storage failing", Code: "unstored"}},
		}
		a.addMedia(e.Media)
		m.volatile[key] = a
		m.log.Error("alarm opened from memory: its event could not be stored", "alarm", a.ID, "key", key, "event", e.ID)
		m.updateGauge()
		m.announce(ActOpened, a)
	}
}

// flushHeld appends held events to the Sink; m.mu is held. On failure
// they stay for the next tick.
func (m *Manager) flushHeld(ctx context.Context) {
	if len(m.held) == 0 || m.o.Sink == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := m.o.Sink.Append(sctx, m.held...)
	cancel()
	if err != nil {
		for _, e := range m.held {
			e.Seq = 0
		}
		return
	}
	m.log.Info("alarm: events held while storage failed are stored", "events", len(m.held))
	m.held = nil
}

// unstoredList is the unstored alarms that list would keep, newest first.
func (m *Manager) unstoredList(keep func(*Alarm) bool) []Alarm {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Alarm
	for _, a := range m.volatile {
		if keep(a) {
			out = append(out, *a.cloneHead())
		}
	}
	slices.SortFunc(out, func(x, y Alarm) int { return strings.Compare(y.ID, x.ID) })
	return out
}
