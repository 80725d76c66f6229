package store

import (
	"context"
	"slices"
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

// followers are the running followers by name; several may share one
// (two consoles of one user), so the name set, and the metric's series,
// stay bounded.
type followers struct {
	mu sync.Mutex
	m  map[string][]*follower
}

func (f *followers) add(name string) *follower {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string][]*follower{}
	}
	fl := &follower{}
	f.m[name] = append(f.m[name], fl)
	return fl
}

func (f *followers) remove(name string, fl *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := slices.DeleteFunc(f.m[name], func(x *follower) bool { return x == fl })
	if len(l) == 0 {
		delete(f.m, name)
	} else {
		f.m[name] = l
	}
}

// FollowerLag is how many committed events each running follower has not
// handled yet, by name: the furthest behind of those sharing a name.
func (s *Store) FollowerLag() map[string]uint64 {
	s.follows.mu.Lock()
	defer s.follows.mu.Unlock()
	last := s.LastSeq()
	out := make(map[string]uint64, len(s.follows.m))
	for name, l := range s.follows.m {
		var lag uint64
		for _, fl := range l {
			if at := fl.at.Load(); last > at {
				lag = max(lag, last-at)
			}
		}
		out[name] = lag
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
	return follow(ctx, s, o, func(t *Tail, n int) ([]event.Event, uint64, error) {
		page, err := t.Read(n, Filter{})
		return page, t.After(), err
	}, fn)
}

// FollowRaw is Follow with the stored JSON, not decoded (the MQTT mirror
// publishes it as it is).
func (s *Store) FollowRaw(ctx context.Context, o FollowOptions, fn func(ctx context.Context, page []Raw) (uint64, error)) error {
	return follow(ctx, s, o, func(t *Tail, n int) ([]Raw, uint64, error) {
		page, _, err := t.ReadRaw(n)
		return page, t.After(), err
	}, fn)
}

func follow[T any](ctx context.Context, s *Store, o FollowOptions, read func(t *Tail, n int) ([]T, uint64, error),
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
	t := s.Tail(o.Name, at)
	defer t.Close()
	for {
		page, next, err := read(t, o.Page)
		if err == nil && len(page) > 0 {
			var done uint64
			done, err = fn(ctx, page)
			at = max(at, done)
			if err == nil {
				at = max(at, next)
			}
			t.Seek(at)
			t.Handled(at)
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
			t.Seek(at) // hand the rest again
			s.log.Warn("store: follower failed; retrying", "follower", o.Name, "after", at, "err", err)
			tm := time.NewTimer(o.Retry)
			select {
			case <-ctx.Done():
				tm.Stop()
				return nil
			case <-tm.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.Changed():
		}
	}
}

// Tail is a named reader of the event log for followers that pipeline
// (the uplink keeps a window in flight) or filter (the SSE stream): it
// reads after its position, wakes on commit, and shows in FollowerLag
// at the seq its owner says it has handled. Follow is built on it. One
// goroutine uses a Tail at a time.
type Tail struct {
	s       *Store
	name    string
	fl      *follower
	after   uint64
	changed <-chan struct{}
}

// Tail starts a reader after seq; Close removes it from FollowerLag.
func (s *Store) Tail(name string, after uint64) *Tail {
	t := &Tail{s: s, name: name, fl: s.follows.add(name), after: after}
	t.fl.at.Store(after)
	return t
}

// Close stops reporting the tail's lag.
func (t *Tail) Close() { t.s.follows.remove(t.name, t.fl) }

// Seek moves the read position: the next read starts after seq.
func (t *Tail) Seek(after uint64) { t.after = after }

// After is the read position.
func (t *Tail) After() uint64 { return t.after }

// Handled reports that the owner has handled everything through seq.
func (t *Tail) Handled(seq uint64) {
	if seq > t.fl.at.Load() {
		t.fl.at.Store(seq)
	}
}

// Changed closes on the first commit after the last read started, so a
// reader that found nothing new waits on it without missing one.
func (t *Tail) Changed() <-chan struct{} {
	if t.changed == nil {
		t.changed = t.s.Changed()
	}
	return t.changed
}

// ReadRaw returns up to n events after the position and moves past them.
// skipped counts seqs missing in between: events retention evicted
// before this reader got to them.
func (t *Tail) ReadRaw(n int) (page []Raw, skipped uint64, err error) {
	t.changed = t.s.Changed() // before reading, so no commit is missed
	page, err = t.s.ReadRaw(t.after, n)
	for _, r := range page {
		if r.Seq > t.after+1 {
			skipped += r.Seq - t.after - 1
		}
		t.after = r.Seq
	}
	return page, skipped, err
}

// Read returns up to n events after the position that match f, and
// moves past every event it scanned, matching or not.
func (t *Tail) Read(n int, f Filter) ([]event.Event, error) {
	t.changed = t.s.Changed()
	page, next, err := t.s.Read(t.after, n, f)
	t.after = max(t.after, next)
	return page, err
}
