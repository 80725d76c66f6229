package alarm

import (
	"context"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// Run escalates alarms nobody acknowledged, retries alarm.* events the Sink
// refused, prunes old resolved alarms and, when Options.Source is set,
// follows the event log into Observe. It returns nil when ctx ends, after
// its goroutines have stopped. Escalation continues from the persisted
// times, so a restart neither forgets nor bunches escalations.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if m.o.Source != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.follow(ctx)
		}()
	}
	tick := time.NewTicker(m.tickEvery())
	defer tick.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			m.saveCursor(true)
			return nil
		case r := <-m.unstored:
			m.showUnstored(r)
			continue
		case <-tick.C:
		}
		m.escalateDue(ctx)
		m.mu.Lock()
		m.flushHeld(ctx)
		m.flush(ctx)
		m.mu.Unlock()
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if n, err := m.prune(m.now().Add(-m.o.KeepResolved), 1000); err != nil {
				m.log.Warn("alarm: prune", "err", err)
			} else if n > 0 {
				m.log.Info("alarm: pruned resolved alarms", "count", n)
			}
		}
	}
}

// tickEvery checks escalations often enough to be late by at most a tenth
// of EscalateAfter, and at least every second.
func (m *Manager) tickEvery() time.Duration {
	return min(max(min(m.o.EscalateAfter, m.o.AcceptWithin)/10, 10*time.Millisecond), time.Second)
}

// follow observes every committed event in seq order, a page at a time.
// A page that fails is observed again (an alarm is never lost).
func (m *Manager) follow(ctx context.Context) {
	err := m.o.Source.Follow(ctx, store.FollowOptions{Name: "alarms", Start: m.Cursor()},
		func(ctx context.Context, evs []event.Event) (uint64, error) {
			// One transaction per page, not per event: the store's group
			// commits share bbolt's single writer.
			if err := m.observeAll(ctx, evs); err != nil {
				if ctx.Err() == nil {
					m.met.errors.WithLabelValues("follow").Inc()
					m.log.Warn("alarm: observe", "after", m.Cursor(), "events", len(evs), "err", err)
				}
				return 0, err
			}
			m.saveCursor(false)
			return evs[len(evs)-1].Seq, nil
		})
	if err != nil && ctx.Err() == nil {
		m.log.Error("alarm: following the event log stopped", "err", err)
	}
}
