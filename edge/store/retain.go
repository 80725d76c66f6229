package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// RetainStats reports one retention pass.
type RetainStats struct {
	Evicted      int
	EvictedBytes int64
	BySeverity   map[event.Severity]int
	DedupPruned  int
	OverBudget   bool // still above MaxBytes afterwards (only protected critical events left)
}

// Retain runs one retention pass: events older than MaxAge go, then, while
// the store is above MaxBytes, the oldest info events, then warning, then
// critical. Critical events with seq >= Protect() are never evicted. It
// also forgets dedup keys older than DedupWindow.
func (s *Store) Retain(now time.Time) (RetainStats, error) {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	rs := RetainStats{BySeverity: map[event.Severity]int{}}
	if s.isClosed() {
		return rs, ErrClosed
	}
	protect := uint64(math.MaxUint64)
	if s.opts.Protect != nil {
		protect = s.opts.Protect()
	}
	fail := func(err error) (RetainStats, error) {
		s.metrics.errors.WithLabelValues("retain").Inc()
		return rs, fmt.Errorf("store: retain: %w", err)
	}
	if s.opts.MaxAge > 0 {
		cutoff := now.Add(-s.opts.MaxAge).UnixNano()
		for _, sev := range severities {
			if err := s.evict(sev, "age", protect, &rs, func(t, _ int64) bool { return t < cutoff }); err != nil {
				return fail(err)
			}
		}
	}
	if limit := s.opts.MaxBytes; limit > 0 {
		for _, sev := range severities {
			excess := s.totalBytes() - limit
			if excess <= 0 {
				break
			}
			if err := s.evict(sev, "bytes", protect, &rs, func(_, size int64) bool {
				if excess <= 0 {
					return false
				}
				excess -= size
				return true
			}); err != nil {
				return fail(err)
			}
		}
		rs.OverBudget = s.totalBytes() > limit
	}
	s.overBudget.Store(rs.OverBudget)
	n, err := s.pruneDedup(now)
	rs.DedupPruned = n
	if err != nil {
		return fail(err)
	}
	if rs.Evicted > 0 {
		s.log.Info("retention evicted events", "evicted", rs.Evicted, "bytes", rs.EvictedBytes,
			"info", rs.BySeverity[event.Info], "warning", rs.BySeverity[event.Warning], "critical", rs.BySeverity[event.Critical])
	}
	return rs, nil
}

// OverBudget reports whether the last retention pass ended above MaxBytes:
// everything evictable is gone and the rest are critical events not yet
// delivered (seq >= Protect()). The uplink turns it into "storage full".
func (s *Store) OverBudget() bool { return s.overBudget.Load() }

// evict deletes the oldest events of one severity while take(commitTime,
// size) says so, in bounded transactions.
func (s *Store) evict(sev event.Severity, reason string, protect uint64, rs *RetainStats, take func(t, size int64) bool) error {
	for {
		var n int
		var bytes int64
		stop := false
		type crit struct {
			seq uint64
			typ string
		}
		var crits []crit
		err := s.update(func(tx *bbolt.Tx) error {
			n, bytes, crits = 0, 0, nil
			idx, evb := tx.Bucket(bktIdx[sev]), tx.Bucket(bktEvents)
			c := idx.Cursor()
			// Always delete the first entry: a bbolt cursor may skip after Delete.
			for k, v := c.First(); ; k, v = c.First() {
				if k == nil {
					stop = true
					break
				}
				if n == s.retainChunk {
					break
				}
				seq := binary.BigEndian.Uint64(k)
				t, size := decodeIdx(v)
				if sev == event.Critical && seq >= protect || !take(t, size) {
					stop = true
					break
				}
				if sev == event.Critical {
					var l lite
					_ = json.Unmarshal(evb.Get(k), &l)
					crits = append(crits, crit{seq, l.Type})
				}
				if err := evb.Delete(k); err != nil {
					return err
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
				bytes += size
			}
			if n == 0 {
				return nil
			}
			return addCounters(tx.Bucket(bktMeta), map[event.Severity]int64{sev: -int64(n)}, map[event.Severity]int64{sev: -bytes})
		})
		if err != nil {
			return fmt.Errorf("evict %s by %s: %w", sev, reason, err)
		}
		if n > 0 {
			s.addStats(map[event.Severity]int64{sev: -int64(n)}, map[event.Severity]int64{sev: -bytes}, 0)
			s.metrics.evicted.WithLabelValues(string(sev), reason).Add(float64(n))
			rs.Evicted += n
			rs.EvictedBytes += bytes
			rs.BySeverity[sev] += n
			for _, c := range crits {
				s.log.Warn("evicted critical event", "seq", c.seq, "type", c.typ, "reason", reason)
			}
		}
		if stop || n < s.retainChunk {
			return nil
		}
	}
}

func (s *Store) pruneDedup(now time.Time) (int, error) {
	cutoff := now.Add(-s.opts.DedupWindow).UnixNano()
	total := 0
	for {
		n, more := 0, false
		err := s.update(func(tx *bbolt.Tx) error {
			n, more = 0, false
			c := tx.Bucket(bktDedup).Cursor()
			for k, v := c.First(); k != nil; {
				if n == s.retainChunk {
					more = true
					return nil
				}
				if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < cutoff {
					k = append([]byte(nil), k...)
					if err := c.Delete(); err != nil {
						return err
					}
					n++
					k, v = c.Seek(k) // a cursor may skip after Delete; Seek lands on the next key
					continue
				}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("prune dedup keys: %w", err)
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// Run enforces retention every minute, and soon after a commit takes the
// store over MaxBytes, until ctx is done.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(retainEvery)
	defer tick.Stop()
	var lastWarn time.Time
	for {
		rs, err := s.Retain(time.Now())
		switch {
		case errors.Is(err, ErrClosed):
			return err
		case err != nil:
			s.log.Error("retention failed", "err", err)
		case rs.OverBudget && time.Since(lastWarn) > retainEvery:
			lastWarn = time.Now()
			s.log.Warn("store is over its byte budget; the rest are critical events not yet delivered",
				"bytes", s.totalBytes(), "max_bytes", s.opts.MaxBytes)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.overQuota:
			// Nudged by the committer; pace passes so a protected backlog cannot spin us.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}
