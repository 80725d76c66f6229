package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// target is what every queue shares: a durable cursor, status and metrics.
type Target struct {
	u    *Uplink
	name string
	kind string
	key  string // store cursor name
	tail *store.Tail
	log  *slog.Logger
	m    targetMetrics

	cursor    atomic.Uint64 // delivered through here (persisted or about to be)
	saveMu    sync.Mutex    // guards saved, savedAt; held while persisting
	saved     uint64        // last persisted value
	savedAt   time.Time
	oldest    atomic.Int64  // unix ns of the first undelivered event's time; 0 = none
	delivered atomic.Uint64 // since start
	dead      atomic.Uint64 // since start

	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     string
	lastErrAt   time.Time
	retrying    bool
	advanced    chan struct{} // closed and replaced on every cursor move
}

func (u *Uplink) newTarget(name, kind string) (*Target, error) {
	t := &Target{
		u: u, name: name, kind: kind, key: cursorPrefix + name,
		log:      u.log.With("target", name),
		m:        u.m.forTarget(name),
		advanced: make(chan struct{}),
	}
	c, err := u.st.Cursor(t.key)
	if err != nil {
		return nil, fmt.Errorf("uplink %s: read cursor: %w", name, err)
	}
	t.cursor.Store(c)
	t.saved = c
	t.tail = u.st.Tail("uplink "+name, c)
	return t, nil
}

// Name is the target's name (its cursor is uplink:<name>).
func (t *Target) Name() string { return t.name }

// Log is the target's logger.
func (t *Target) Log() *slog.Logger { return t.log }

// Env is the uplink the target belongs to.
func (t *Target) Env() *Env { return t.u.env }

// Config is the uplink config (batch, linger, backoff).
func (t *Target) Config() config.Uplink { return t.u.o.Config }

// Cursor is the last seq delivered (in memory; Persist saves it).
func (t *Target) Cursor() uint64 { return t.cursor.Load() }

// Tail reads the log after the cursor.
func (t *Target) Tail() *store.Tail { return t.tail }

// Oldest is the time of the first undelivered event (zero: none).
func (t *Target) Oldest() time.Time {
	if o := t.oldest.Load(); o != 0 {
		return time.Unix(0, o)
	}
	return time.Time{}
}

// SetOldest records the time of the first undelivered event (zero: none),
// for the backlog age gauge.
func (t *Target) SetOldest(at time.Time) {
	if at.IsZero() {
		t.oldest.Store(0)
		return
	}
	t.oldest.Store(at.UnixNano())
}

// Skipped counts events retention evicted before delivery.
func (t *Target) Skipped(n int) { t.m.skipped.Add(float64(n)) }

// Delivered counts n accepted objects the cursor does not show (a batch
// split into several requests).
func (t *Target) Delivered(n int) {
	t.delivered.Add(uint64(n))
	t.m.delivered.Add(float64(n))
}

// MediaUploaded counts one file the platform took.
func (t *Target) MediaUploaded() {
	t.m.mediaUploaded.Inc()
	t.delivered.Add(1)
}

// MediaFailed counts one file not uploaded, by reason (missing, rejected).
func (t *Target) MediaFailed(reason string) { t.m.mediaFailed.WithLabelValues(reason).Inc() }

func (t *Target) NewBackoff() *backoff.ExponentialBackOff {
	c := t.u.o.Config
	b := &backoff.ExponentialBackOff{
		InitialInterval: c.MinBackoff.D(), RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: c.MaxBackoff.D(),
	}
	b.Reset()
	return b
}

// ack moves the cursor to seq in memory and persists it when due (or
// force). Persisting retries until it works or ctx ends: a cursor that
// cannot be saved only means resending, never losing.
func (t *Target) Ack(ctx context.Context, seq uint64, n int, force bool) error {
	t.Advance(seq, n)
	t.saveMu.Lock()
	due := force || time.Since(t.savedAt) >= SaveInterval
	t.saveMu.Unlock()
	if !due {
		return nil
	}
	return t.Persist(ctx)
}

// advance moves the cursor to seq in memory only: the caller persists it.
func (t *Target) Advance(seq uint64, n int) {
	if seq > t.cursor.Load() {
		t.cursor.Store(seq)
	}
	t.tail.Handled(seq)
	t.oldest.Store(0)
	t.delivered.Add(uint64(n))
	t.m.delivered.Add(float64(n))
	now := time.Now()
	t.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	t.mu.Lock()
	t.lastSuccess = now
	t.retrying = false
	close(t.advanced)
	t.advanced = make(chan struct{})
	t.mu.Unlock()
}

// persist saves the in-memory cursor, retrying until it works, the store
// is closed, or ctx ends.
func (t *Target) Persist(ctx context.Context) error {
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	c := t.cursor.Load()
	if c == t.saved {
		return nil
	}
	bo := t.NewBackoff()
	for {
		err := t.u.st.SetCursor(t.key, c)
		if err == nil {
			t.saved, t.savedAt = c, time.Now()
			return nil
		}
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		t.Fail(fmt.Errorf("save cursor: %w", err))
		if err := Sleep(ctx, bo.NextBackOff()); err != nil {
			return err
		}
	}
}

// sessions runs session again and again, with backoff, until ctx ends; a
// session that made progress resets the backoff. A closed store ends it.
func (t *Target) Sessions(ctx context.Context, session func(context.Context) (progressed bool, err error)) error {
	bo := t.NewBackoff()
	for {
		progressed, err := session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("uplink %s: %w", t.name, err)
		}
		if progressed {
			bo.Reset()
		}
		t.Fail(err)
		if Sleep(ctx, bo.NextBackOff()) != nil {
			return nil
		}
	}
}

// fail records a failed attempt that will be retried.
func (t *Target) Fail(err error) {
	t.m.retries.Inc()
	t.mu.Lock()
	first := !t.retrying
	t.retrying = true
	t.lastErr = err.Error()
	t.lastErrAt = time.Now()
	t.mu.Unlock()
	if first {
		t.log.Warn("uplink delivery failing; retrying with backoff", "err", err)
	} else {
		t.log.Debug("uplink retry failed", "err", err)
	}
}

func (t *Target) Advanced() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.advanced
}

func (t *Target) status() TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cursor.Load()
	var backlog uint64
	if last := t.u.st.LastSeq(); last > c {
		backlog = last - c
	}
	return TargetStatus{
		Name: t.name, Kind: t.kind, Cursor: c, BacklogEvents: backlog,
		Delivered: t.delivered.Load(), DeadLettered: t.dead.Load(), Retrying: t.retrying,
		LastSuccess: t.lastSuccess, LastError: t.lastErr, LastErrorTime: t.lastErrAt,
	}
}

// next returns up to limit events after seq, waiting for at least one and
// then up to linger for the batch to fill. Seq gaps are events that
// retention evicted before delivery; they are counted.
func (t *Target) Next(ctx context.Context, after uint64, limit int, linger time.Duration) ([]store.Raw, error) {
	t.tail.Seek(after)
	var batch []store.Raw
	var timer <-chan time.Time
	for {
		more, skipped, err := t.tail.ReadRaw(limit - len(batch))
		if err != nil {
			return nil, err
		}
		t.m.skipped.Add(float64(skipped))
		batch = append(batch, more...)
		if len(batch) > 0 && t.oldest.Load() == 0 {
			t.oldest.Store(batch[0].Time.UnixNano())
		}
		if len(batch) >= limit || (len(batch) > 0 && linger <= 0) {
			return batch, nil
		}
		if len(batch) > 0 && timer == nil {
			tm := time.NewTimer(linger)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer:
			return batch, nil
		case <-t.tail.Changed():
		}
	}
}

// deadLetter stores r in the dead-letter bucket with the platform's answer
// and records a system.deadletter event in the same commit.
func (t *Target) DeadLetter(ctx context.Context, r store.Raw, status int, response []byte) error {
	var id struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.JSON, &id)
	resp := Truncate(response, 512)
	t.log.Error("platform rejected an event; dead-lettered, moving on",
		"seq", r.Seq, "event_id", id.ID, "type", r.Type, "status", status, "response", resp)
	req := &store.Request{DeadLetter: &store.DeadLetter{
		Source:  cursorPrefix + t.name,
		Topic:   t.name,
		Reason:  fmt.Sprintf("platform rejected event seq %d id %s with status %d: %s", r.Seq, id.ID, status, resp),
		Payload: r.JSON,
		Size:    len(r.JSON),
	}}
	// A rejected dead-letter event gets no event of its own, so a platform
	// that refuses them cannot make a loop.
	if r.Type != event.SystemDeadLtr {
		req.Events = []*event.Event{event.New(t.u.origin(t.name), event.SystemDeadLtr, map[string]any{
			"target": t.name, "seq": r.Seq, "event_id": id.ID, "status": status, "response": resp,
		})}
	}
	done := make(chan store.Result, 1)
	req.Done = func(res store.Result) { done <- res }
	t.u.st.Submit(req)
	select {
	case res := <-done:
		if res.Err != nil {
			return fmt.Errorf("uplink %s: store dead letter for seq %d: %w", t.name, r.Seq, res.Err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	t.dead.Add(1)
	t.m.dead.Inc()
	return nil
}

// rejectedCritical raises the alarm for a critical event the platform
// refuses: it is kept and retried, not dead-lettered. A refused alarm of
// this kind raises no further one, so a platform refusing everything
// cannot make a loop.
func (t *Target) RejectedCritical(ctx context.Context, r store.Raw, status int, response []byte) {
	var id struct {
		ID     string `json:"id"`
		Source struct {
			Kind string `json:"kind"`
		} `json:"source"`
	}
	_ = json.Unmarshal(r.JSON, &id)
	resp := Truncate(response, 512)
	t.m.heldCritical.Inc()
	t.log.Error("platform rejected a critical event; kept and retried, not dead-lettered",
		"seq", r.Seq, "event_id", id.ID, "type", r.Type, "status", status, "response", resp)
	if r.Type == event.SystemFault && id.Source.Kind == "uplink" {
		return
	}
	ev := event.New(t.u.origin(t.name), event.SystemFault, map[string]any{
		"component": "uplink " + t.name,
		"reason":    fmt.Sprintf("platform rejects critical event seq %d id %s (%s) with status %d: %s; it is retried until taken", r.Seq, id.ID, r.Type, status, resp),
		"target":    t.name, "seq": r.Seq, "event_id": id.ID, "status": status,
		"reason_code": "uplink.rejected_critical",
	})
	if err := t.u.st.Append(ctx, ev); err != nil && ctx.Err() == nil {
		t.log.Error("could not record the rejected-critical alarm", "err", err)
	}
}

func Truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
