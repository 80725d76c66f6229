package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// FollowOptions configure a follower of the event log.
type FollowOptions struct {
	// Name identifies the follower in FollowerLag and the
	// warden_store_follower_lag_events metric.
	Name string
	// Cursor, when set, is a durable cursor: Follow starts after its saved
	// value (after Start when none is saved) and saves it after every page
	// fn completes. Empty: Follow starts after Start and saves nothing
	// (the caller keeps its own position).
	Cursor string
	Start  uint64
	Page   int           // events per call (default 500)
	Retry  time.Duration // wait after a failed read or call (default 1s)
}

// follower is one running follower's position, for lag.
type follower struct{ at atomic.Uint64 }

type followers struct {
	mu sync.Mutex
	m  map[string]*follower
}

func (f *followers) add(name string) *follower {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*follower{}
	}
	fl := &follower{}
	f.m[name] = fl
	return fl
}

func (f *followers) remove(name string, fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[name] == fl {
		delete(f.m, name)
	}
}

// FollowerLag is how many committed events each running follower has not
// handled yet, by name.
func (s *Store) FollowerLag() map[string]uint64 {
	s.follows.mu.Lock()
	defer s.follows.mu.Unlock()
	last := s.LastSeq()
	out := make(map[string]uint64, len(s.follows.m))
	for name, fl := range s.follows.m {
		at := fl.at.Load()
		if last > at {
			out[name] = last - at
		} else {
			out[name] = 0
		}
	}
	return out
}

// Follow hands every event committed after its start to fn, a page at a
// time, in seq order, until ctx ends (then it returns nil). It wakes on
// every commit, so it never polls. fn returns the seq through which it
// handled the page (the page's last event when it took all of it); on an
// error the rest is handed again after Retry. A failed read also waits
// Retry. It returns an error only when the durable cursor cannot be read,
// or the store is closed.
func (s *Store) Follow(ctx context.Context, o FollowOptions, fn func(ctx context.Context, page []event.Event) (uint64, error)) error {
	return follow(ctx, s, o, func(after uint64, n int) ([]event.Event, uint64, error) {
		return s.Read(after, n, Filter{})
	}, fn)
}

// FollowRaw is Follow with the stored JSON, not decoded (the MQTT mirror
// publishes it as it is).
func (s *Store) FollowRaw(ctx context.Context, o FollowOptions, fn func(ctx context.Context, page []Raw) (uint64, error)) error {
	return follow(ctx, s, o, func(after uint64, n int) ([]Raw, uint64, error) {
		page, err := s.ReadRaw(after, n)
		next := after
		if len(page) > 0 {
			next = page[len(page)-1].Seq
		}
		return page, next, err
	}, fn)
}

func follow[T any](ctx context.Context, s *Store, o FollowOptions, read func(after uint64, n int) ([]T, uint64, error),
	fn func(context.Context, []T) (uint64, error)) error {
	if o.Page <= 0 {
		o.Page = 500
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	at := o.Start
	if o.Cursor != "" {
		c, err := s.Cursor(o.Cursor)
		if err != nil {
			return err
		}
		if c > 0 {
			at = c
		}
	}
	fl := s.follows.add(o.Name)
	defer s.follows.remove(o.Name, fl)
	fl.at.Store(at)
	for {
		changed := s.Changed() // before reading, so no commit is missed
		page, next, err := read(at, o.Page)
		if err == nil && len(page) > 0 {
			var done uint64
			done, err = fn(ctx, page)
			at = max(at, done)
			if err == nil {
				at = max(at, next)
			}
			fl.at.Store(at)
			if o.Cursor != "" && done > 0 {
				if serr := s.SetCursor(o.Cursor, at); serr != nil {
					s.log.Warn("store: save follower cursor", "follower", o.Name, "seq", at, "err", serr)
				}
			}
			if err == nil && len(page) == o.Page {
				continue // more may be waiting
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if s.isClosed() {
			return ErrClosed
		}
		if err != nil {
			s.log.Warn("store: follower failed; retrying", "follower", o.Name, "after", at, "err", err)
			t := time.NewTimer(o.Retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
