// Package health tracks whether a part's commits are failing, for /readyz
// and the system.storage alarm.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Hold is how long after its last failure a part still counts as failing:
// on a full disk small commits (deletes) can succeed between failing ones,
// and readiness must not flap with them.
const Hold = 5 * time.Second

// Commits records the outcome of a part's commits. The zero value is a
// healthy part; it is safe for concurrent use.
type Commits struct {
	mu    sync.Mutex
	err   error
	since time.Time // first failure of this episode
	last  time.Time // latest failure
	ok    time.Time // latest success
	now   func() time.Time
}

func (c *Commits) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Failed records a failed commit; first is true when it starts an episode.
func (c *Commits) Failed(err error) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	first = c.err == nil
	if first {
		c.since = now
	}
	c.err, c.last = err, now
	return first
}

// Succeeded records a successful commit; recovered is true when it ends an
// episode (no failure for Hold).
func (c *Commits) Succeeded() (recovered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok = c.clock()
	return c.err != nil && c.settle()
}

// settle ends the episode when a success came after the last failure and
// Hold has passed since it; c.mu is held.
func (c *Commits) settle() bool {
	if c.ok.After(c.last) && c.clock().Sub(c.last) >= Hold {
		c.err = nil
		return true
	}
	return false
}

// Err is nil while healthy, else what is failing and since when.
func (c *Commits) Err(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil || c.settle() {
		return nil
	}
	return fmt.Errorf("%s commits failing since %s: %w", what, c.since.UTC().Format(time.RFC3339), c.err)
}

// Watchdog calls feed every interval while alive reports no error, until
// ctx ends: systemd's WatchdogSec restarts a gateway whose alive check
// stays failing.
func Watchdog(ctx context.Context, every time.Duration, alive func() error, feed func(), log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := alive(); err != nil {
				log.Error("watchdog not fed", "err", err)
				continue
			}
			feed()
		}
	}
}
