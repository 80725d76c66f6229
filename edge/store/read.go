package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/smartcommunity/warden/edge/event"
)

const (
	defaultLimit = 100
	maxLimit     = 10000
	scanChunk    = 10000 // records per read transaction, so a long filtered scan never pins the mmap
	rawChunk     = 64 << 10
)

// Filter selects events in Read. Zero fields match everything. Since is
// inclusive, Until exclusive; MinSeverity keeps that severity and above.
type Filter struct {
	TypePrefix                 string
	Since, Until               time.Time
	Building, Unit, Room, Zone string
	MinSeverity                event.Severity
	SourceID                   string
}

func (f Filter) empty() bool { return f == Filter{} }

// lite is the part of an event a filter looks at, decoded without data.
type lite struct {
	Type     string         `json:"type"`
	Severity event.Severity `json:"severity"`
	Time     time.Time      `json:"time"`
	Source   event.Source   `json:"source"`
	Location event.Location `json:"location"`
}

func (f Filter) match(l *lite) bool {
	switch {
	case f.TypePrefix != "" && !strings.HasPrefix(l.Type, f.TypePrefix),
		!f.Since.IsZero() && l.Time.Before(f.Since),
		!f.Until.IsZero() && !l.Time.Before(f.Until),
		f.Building != "" && l.Location.Building != f.Building,
		f.Unit != "" && l.Location.Unit != f.Unit,
		f.Room != "" && l.Location.Room != f.Room,
		f.Zone != "" && l.Location.Zone != f.Zone,
		f.MinSeverity != "" && l.Severity.Rank() < f.MinSeverity.Rank(),
		f.SourceID != "" && l.Source.ID != f.SourceID:
		return false
	}
	return true
}

// Raw is a stored event as bytes, for the uplink.
type Raw struct {
	Seq      uint64
	Type     string
	Severity event.Severity
	Time     time.Time
	JSON     []byte
}

func clampLimit(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return min(n, maxLimit)
}

// Read returns up to limit events with seq > after that match f, in seq
// order (limit <= 0 means 100, at most 10000). next is the seq of the last
// returned event, or after when none; paging with next never skips or repeats.
func (s *Store) Read(after uint64, limit int, f Filter) ([]event.Event, uint64, error) {
	out, next, err := s.read(s.scan, after, limit, f)
	if err != nil {
		return nil, after, fmt.Errorf("store: read after %d: %w", after, err)
	}
	return out, next, nil
}

// ReadBack is Read backwards: up to limit events with seq < before (0:
// from the newest) that match f, newest first. next is the seq of the last
// (oldest) returned event, to pass as the next page's before, or before
// when none.
func (s *Store) ReadBack(before uint64, limit int, f Filter) ([]event.Event, uint64, error) {
	out, next, err := s.read(s.scanBack, before, limit, f)
	if err != nil {
		return nil, before, fmt.Errorf("store: read before %d: %w", before, err)
	}
	return out, next, nil
}

// read collects the events that scan (forwards or backwards from from)
// passes and f matches.
func (s *Store) read(scan func(uint64, func(uint64, []byte) (bool, error)) error, from uint64, limit int, f Filter) ([]event.Event, uint64, error) {
	limit = clampLimit(limit)
	var out []event.Event
	next := from
	err := scan(from, func(seq uint64, v []byte) (bool, error) {
		if !f.empty() {
			var l lite
			if err := json.Unmarshal(v, &l); err != nil {
				return false, fmt.Errorf("event %d: decode: %v: %w", seq, err, ErrCorrupt)
			}
			if !f.match(&l) {
				return true, nil
			}
		}
		var ev event.Event
		if err := json.Unmarshal(v, &ev); err != nil {
			return false, fmt.Errorf("event %d: decode: %v: %w", seq, err, ErrCorrupt)
		}
		out = append(out, ev)
		next = seq
		return len(out) < limit, nil
	})
	if err != nil {
		s.metrics.errors.WithLabelValues("read").Inc()
	}
	return out, next, err
}

// ReadRaw returns up to limit stored events with seq > after, as JSON.
func (s *Store) ReadRaw(after uint64, limit int) ([]Raw, error) {
	limit = clampLimit(limit)
	out := make([]Raw, 0, min(limit, 1024))
	var buf []byte // JSON copies share chunks: one allocation per rawChunk, not per event
	types := map[string]string{}
	err := s.scan(after, func(seq uint64, v []byte) (bool, error) {
		l, ok := rawLite(v, types)
		if !ok {
			var d lite // its own variable: l stays off the heap
			if err := json.Unmarshal(v, &d); err != nil {
				return false, fmt.Errorf("event %d: decode: %v: %w", seq, err, ErrCorrupt)
			}
			l = d
		}
		if cap(buf)-len(buf) < len(v) {
			// room for the rest of the page at this event's size, within rawChunk
			buf = make([]byte, 0, max(len(v), min(rawChunk, (limit-len(out))*(len(v)+len(v)/4))))
		}
		n := len(buf)
		buf = append(buf, v...)
		out = append(out, Raw{Seq: seq, Type: l.Type, Severity: l.Severity, Time: l.Time, JSON: buf[n:len(buf):len(buf)]})
		return len(out) < limit, nil
	})
	if err != nil {
		s.metrics.errors.WithLabelValues("read").Inc()
		return nil, fmt.Errorf("store: read raw after %d: %w", after, err)
	}
	return out, nil
}

// scan calls fn for events with seq > after until fn returns false, in
// read transactions of bounded length.
func (s *Store) scan(after uint64, fn func(seq uint64, v []byte) (bool, error)) error {
	return s.walk(after, false, fn)
}

// scanBack is scan towards older events: seq < before (0: all), newest
// first.
func (s *Store) scanBack(before uint64, fn func(seq uint64, v []byte) (bool, error)) error {
	return s.walk(before, true, fn)
}

// walk is scan (back false: seq > from, oldest first) and scanBack (seq <
// from, 0 meaning all, newest first); pos is the last seq passed to fn, so
// each read transaction resumes after it.
func (s *Store) walk(from uint64, back bool, fn func(seq uint64, v []byte) (bool, error)) error {
	pos := from
	for more := true; more; {
		if (!back && pos == math.MaxUint64) || (back && pos == 1) {
			return nil
		}
		err := s.view(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bktEvents).Cursor()
			var k, v []byte
			step := c.Next
			switch {
			case !back:
				k, v = c.Seek(u64(pos + 1))
			case pos == 0:
				step = c.Prev
				k, v = c.Last()
			default:
				step = c.Prev
				if k, _ = c.Seek(u64(pos)); k == nil {
					k, v = c.Last()
				} else {
					k, v = c.Prev()
				}
			}
			for n := 0; ; k, v = step() {
				if k == nil {
					more = false
					return nil
				}
				if n == s.scanChunk {
					return nil
				}
				n++
				pos = binary.BigEndian.Uint64(k)
				ok, err := fn(pos, v)
				if err != nil || !ok {
					more = false
					return err
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Get returns the event with seq, or ErrNotFound.
func (s *Store) Get(seq uint64) (event.Event, error) {
	var ev event.Event
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktEvents).Get(u64(seq))
		if v == nil {
			return fmt.Errorf("store: event %d: %w", seq, ErrNotFound)
		}
		if err := json.Unmarshal(v, &ev); err != nil {
			return fmt.Errorf("store: event %d: decode: %v: %w", seq, err, ErrCorrupt)
		}
		return nil
	})
	return ev, err
}

// Cursor returns the named cursor (0 when never set).
func (s *Store) Cursor(name string) (uint64, error) {
	var v uint64
	err := s.view(func(tx *bbolt.Tx) error {
		v = getU64(tx.Bucket(bktCursors), []byte(name))
		return nil
	})
	return v, err
}

// SetCursor durably stores the named cursor.
func (s *Store) SetCursor(name string, seq uint64) error {
	if name == "" {
		return errors.New("store: cursor name is empty")
	}
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktCursors).Put([]byte(name), u64(seq))
	})
	if err != nil {
		s.metrics.errors.WithLabelValues("cursor").Inc()
		return fmt.Errorf("store: set cursor %s: %w", name, err)
	}
	return nil
}

// DeadLetterRecord is a stored dead letter with its id.
type DeadLetterRecord struct {
	ID uint64
	DeadLetter
}

// DeadLetters returns up to limit dead letters with id > after, oldest
// first. Only the newest 10,000 are kept.
func (s *Store) DeadLetters(after uint64, limit int) ([]DeadLetterRecord, error) {
	limit = clampLimit(limit)
	var out []DeadLetterRecord
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktDead).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			rec := DeadLetterRecord{ID: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &rec.DeadLetter); err != nil {
				return fmt.Errorf("dead letter %d: decode: %v: %w", rec.ID, err, ErrCorrupt)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// view runs a read transaction; bbolt panics and faults become ErrCorrupt.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return s.tx(false, fn)
}

// update runs a write transaction outside the committer (its own fsync).
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	return s.tx(true, fn)
}

func (s *Store) tx(write bool, fn func(*bbolt.Tx) error) (err error) {
	if s.isClosed() {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt panicked (%v): %w", r, ErrCorrupt)
		}
	}()
	if write {
		err = s.db.Update(fn)
	} else {
		err = s.db.View(fn)
	}
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
