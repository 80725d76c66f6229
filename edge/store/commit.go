package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// Request is one unit of group commit. The store sets each event's Seq
// before Done; leave the events alone until then.
type Request struct {
	Events     []*event.Event
	DedupKey   string      // optional; remembered with this commit for DedupWindow
	SkipIfSeen bool        // if DedupKey was committed within the window: commit nothing, Result.Dup = true
	DeadLetter *DeadLetter // optional, stored in the same commit
	// Done is called exactly once after commit or failure, from the
	// committer goroutine; it must not block.
	Done func(Result)

	js  [][]byte // events marshalled with seq 0, by the submitter
	err error    // validation failure, reported without touching the db
}

// Result of a Request.
type Result struct {
	Dup bool
	Err error
}

// DeadLetter records a message that could not be turned into an event.
type DeadLetter struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Topic   string    `json:"topic"`
	Reason  string    `json:"reason"`
	Payload []byte    `json:"payload"` // truncated to 4 KiB on store
	Size    int       `json:"size"`    // original payload length
}

// Append assigns Seq to each event and returns only after the fsynced
// commit that holds them. When ctx ends first it returns ctx.Err(), but
// the events may still be committed.
func (s *Store) Append(ctx context.Context, evs ...*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	ch := make(chan Result, 1)
	s.Submit(&Request{Events: evs, Done: func(r Result) { ch <- r }})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Submit queues r for group commit. Requests commit in submission order, so
// seq order is submission order. It blocks only while the queue is full.
func (s *Store) Submit(r *Request) {
	if r == nil {
		return
	}
	if r.Done == nil {
		r.Done = func(Result) {}
	}
	r.js, r.err = marshalEvents(r.Events)
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		r.Done(Result{Err: ErrClosed})
		return
	}
	s.queue <- r
}

var (
	idPrefix = []byte(`{"id":"`)
	seqZero  = []byte(`,"seq":0,`)
)

func marshalEvents(evs []*event.Event) ([][]byte, error) {
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		if ev == nil {
			return nil, fmt.Errorf("store: event %d of %d is nil", i+1, len(evs))
		}
		if !ev.Severity.Valid() {
			return nil, fmt.Errorf("store: event %s %s: severity %q is not info, warning or critical", ev.Type, ev.ID, ev.Severity)
		}
		e := *ev
		e.Seq = 0
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("store: event %s %s: encode: %w", ev.Type, ev.ID, err)
		}
		out[i] = b
	}
	return out, nil
}

// withSeq puts seq into JSON marshalled with seq 0, which event.Event
// writes as {"id":"…","seq":0,…}. It returns nil when the layout differs,
// and the caller marshals again.
func withSeq(js []byte, seq uint64) []byte {
	if !bytes.HasPrefix(js, idPrefix) {
		return nil
	}
	i := len(idPrefix)
	for ; i < len(js) && js[i] != '"'; i++ {
		if js[i] == '\\' {
			i++
		}
	}
	i++ // past the closing quote of the id
	if i > len(js) || !bytes.HasPrefix(js[i:], seqZero) {
		return nil
	}
	out := make([]byte, 0, len(js)+20)
	out = append(out, js[:i+len(seqZero)-2]...)
	out = strconv.AppendUint(out, seq, 10)
	return append(out, js[i+len(seqZero)-1:]...)
}

func (s *Store) committer() {
	defer close(s.done)
	debug.SetPanicOnFault(true) // faults on the mapping become recoverable panics
	for {
		r, ok := <-s.queue
		if !ok {
			return
		}
		batch := []*Request{r}
		size := reqSize(r)
		open := true
	drain:
		for len(batch) < maxBatchReqs && size < maxBatchBytes {
			select {
			case r, ok := <-s.queue:
				if !ok {
					open = false
					break drain
				}
				batch = append(batch, r)
				size += reqSize(r)
			default:
				break drain
			}
		}
		s.commit(batch)
		if !open {
			return
		}
	}
}

func reqSize(r *Request) int {
	n := 64
	for _, b := range r.js {
		n += len(b) + 40
	}
	if r.DeadLetter != nil {
		n += min(len(r.DeadLetter.Payload), deadPayloadMax)
	}
	return n
}

// commitState collects what one transaction did, applied only on success.
type commitState struct {
	seq     uint64
	events  int
	dc, db  map[event.Severity]int64
	dead    int
	results []Result
	seqs    [][]uint64
}

func (s *Store) commit(batch []*Request) {
	start := time.Now()
	st := &commitState{
		dc: map[event.Severity]int64{}, db: map[event.Severity]int64{},
		results: make([]Result, len(batch)), seqs: make([][]uint64, len(batch)),
	}
	err := s.commitTx(batch, st)
	if err != nil {
		s.metrics.errors.WithLabelValues("commit").Inc()
		s.log.Error("commit failed", "requests", len(batch), "err", err)
		s.health.Failed(err)
		for i, r := range batch {
			if r.err == nil {
				st.results[i] = Result{Err: err}
			}
		}
	} else {
		if s.health.Succeeded() {
			s.log.Info("commits succeed again")
		}
		s.commits.Add(1)
		s.lastSeq.Store(st.seq)
		s.addStats(st.dc, st.db, st.dead)
		for i, r := range batch {
			for j, ev := range r.Events {
				if st.seqs[i] != nil {
					ev.Seq = st.seqs[i][j]
				}
			}
		}
		s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
		s.metrics.batchSize.Observe(float64(st.events))
		if st.events > 0 {
			s.broadcast()
		}
		if limit := s.opts.MaxBytes; limit > 0 && s.totalBytes() > limit {
			select {
			case s.overQuota <- struct{}{}:
			default:
			}
		}
	}
	for i, r := range batch {
		if r.err != nil {
			s.metrics.errors.WithLabelValues("validate").Inc()
			st.results[i] = Result{Err: r.err}
		}
		r.Done(st.results[i])
	}
}

func (s *Store) commitTx(batch []*Request, st *commitState) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: commit: bbolt panicked (%v): %w", r, ErrCorrupt)
		}
	}()
	now := time.Now()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		meta, evb, dd := tx.Bucket(bktMeta), tx.Bucket(bktEvents), tx.Bucket(bktDedup)
		st.seq = getU64(meta, keySeq)
		cutoff := now.Add(-s.opts.DedupWindow).UnixNano()
		for i, r := range batch {
			if r.err != nil {
				continue
			}
			if r.DedupKey != "" && r.SkipIfSeen {
				if v := dd.Get([]byte(r.DedupKey)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= cutoff {
					st.results[i].Dup = true
					continue
				}
			}
			seqs := make([]uint64, len(r.Events))
			for j, ev := range r.Events {
				st.seq++
				seqs[j] = st.seq
				js := withSeq(r.js[j], st.seq)
				if js == nil { // cannot happen with event.Event's encoder; keep it correct anyway
					e := *ev
					e.Seq = st.seq
					if js, err = json.Marshal(e); err != nil {
						return err
					}
				}
				k := u64(st.seq)
				if err := evb.Put(k, js); err != nil {
					return fmt.Errorf("put event %d: %w", st.seq, err)
				}
				size := int64(len(js) + len(k))
				if err := tx.Bucket(bktIdx[ev.Severity]).Put(k, encodeIdx(now.UnixNano(), size)); err != nil {
					return fmt.Errorf("put index %d: %w", st.seq, err)
				}
				st.dc[ev.Severity]++
				st.db[ev.Severity] += size
				st.events++
			}
			st.seqs[i] = seqs
			if r.DedupKey != "" {
				if err := dd.Put([]byte(r.DedupKey), u64(uint64(now.UnixNano()))); err != nil {
					return fmt.Errorf("put dedup key: %w", err)
				}
			}
			if r.DeadLetter != nil {
				if err := s.putDeadLetter(tx, r.DeadLetter, st); err != nil {
					return err
				}
			}
		}
		if st.events == 0 {
			return nil
		}
		if err := meta.Put(keySeq, u64(st.seq)); err != nil {
			return err
		}
		return addCounters(meta, st.dc, st.db)
	})
	if err != nil {
		return commitErr(err)
	}
	return nil
}

// commitErr keeps the cause testable: bbolt flattens some I/O errors to text.
func commitErr(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	if !errors.Is(err, syscall.ENOSPC) && strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		return fmt.Errorf("store: commit: disk full: %v: %w", err, syscall.ENOSPC)
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("store: commit: disk full: %w", err)
	}
	return fmt.Errorf("store: commit: %w", err)
}

func (s *Store) putDeadLetter(tx *bbolt.Tx, d *DeadLetter, st *commitState) error {
	b := tx.Bucket(bktDead)
	rec := *d
	if rec.Size == 0 {
		rec.Size = len(d.Payload)
	}
	if len(rec.Payload) > deadPayloadMax {
		rec.Payload = rec.Payload[:deadPayloadMax]
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	if err := b.Put(u64(id), js); err != nil {
		return fmt.Errorf("put dead letter: %w", err)
	}
	st.dead++
	s.statsMu.Lock()
	n := s.deadN + st.dead
	s.statsMu.Unlock()
	if n > maxDeadLetters {
		c := b.Cursor()
		for k, _ := c.First(); k != nil && n > maxDeadLetters; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n--
			st.dead--
		}
	}
	return nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bbolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func countKey(sev event.Severity) []byte { return []byte("count." + string(sev)) }
func bytesKey(sev event.Severity) []byte { return []byte("bytes." + string(sev)) }

// addCounters persists per-severity count and byte deltas.
func addCounters(meta *bbolt.Bucket, dc, db map[event.Severity]int64) error {
	for sev, n := range dc {
		if err := meta.Put(countKey(sev), u64(uint64(int64(getU64(meta, countKey(sev)))+n))); err != nil {
			return err
		}
	}
	for sev, n := range db {
		if err := meta.Put(bytesKey(sev), u64(uint64(int64(getU64(meta, bytesKey(sev)))+n))); err != nil {
			return err
		}
	}
	return nil
}

// Index value: commit time (unix ns) and stored size of the event.
func encodeIdx(t, size int64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(t))
	binary.BigEndian.PutUint64(b[8:], uint64(size))
	return b
}

func decodeIdx(v []byte) (t, size int64) {
	if len(v) != 16 {
		return 0, 0
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
}
