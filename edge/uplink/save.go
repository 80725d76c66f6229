package uplink

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/store"
)

// Cursor saving off the delivery path. Each save is an fsync; doing one
// per batch made the gateway, not the platform, the drain's limit. A crash
// resends what was acknowledged since the last save: at most maxUnsaved
// batches plus the one in flight, and never more than SaveInterval old
// (plus the save's own fsync) while delivery goes on.
const (
	SaveInterval = 100 * time.Millisecond
	saveEvery    = 16 // acknowledged batches that make a save due at once
	maxUnsaved   = 32 // delivery waits for the save beyond this many
)

// saver persists one target's cursor every SaveInterval or saveEvery
// batches, whichever comes first, and holds delivery back when saves fall
// maxUnsaved batches behind.
type Saver struct {
	t   *Target
	due chan struct{} // cap 1: a save is due now

	mu    sync.Mutex
	acked uint64        // batches acknowledged since start
	saved uint64        // acked as of the last completed save
	room  chan struct{} // closed and replaced on every completed save
}

func NewSaver(t *Target) *Saver {
	return &Saver{t: t, due: make(chan struct{}, 1), room: make(chan struct{})}
}

// ack counts a batch whose cursor move is in memory (target.advance) and
// waits while too many are unsaved.
func (s *Saver) Ack(ctx context.Context) error {
	s.mu.Lock()
	s.acked++
	n := s.acked - s.saved
	s.mu.Unlock()
	if n >= saveEvery {
		select {
		case s.due <- struct{}{}:
		default:
		}
	}
	for {
		s.mu.Lock()
		n, room := s.acked-s.saved, s.room
		s.mu.Unlock()
		if n < maxUnsaved {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-room:
		}
	}
}

// run saves until stop is closed, then saves once more (within 5 s) so a
// clean stop resends nothing. It returns an error only for a closed store.
func (s *Saver) Run(ctx context.Context, stop <-chan struct{}) error {
	tick := time.NewTicker(SaveInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.save(fctx); err != nil && !errors.Is(err, store.ErrClosed) {
				s.t.log.Warn("uplink cursor not saved at stop; the last batches will be resent", "err", err)
			}
			return nil
		case <-tick.C:
		case <-s.due:
		}
		if err := s.save(ctx); errors.Is(err, store.ErrClosed) {
			return err
		}
	}
}

func (s *Saver) save(ctx context.Context) error {
	s.mu.Lock()
	a := s.acked // read before the cursor, so the saved cursor covers a
	s.mu.Unlock()
	if err := s.t.Persist(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	if a > s.saved {
		s.saved = a
		close(s.room)
		s.room = make(chan struct{})
	}
	s.mu.Unlock()
	return nil
}
