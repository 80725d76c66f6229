package alarm

import (
	"context"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// SetClock replaces the manager's clock (call before Run).
func (m *Manager) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// EscalateDue runs one escalation pass.
func (m *Manager) EscalateDue(ctx context.Context) { m.escalateDue(ctx) }

// ObserveAll is what the follow loop does with a page of events.
func (m *Manager) ObserveAll(ctx context.Context, evs []event.Event) error {
	return m.observeAll(ctx, evs)
}

const MaxBatchEvents = maxBatchEvents
