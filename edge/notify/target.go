package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
)

// maxQueue bounds one target's queue in memory. Beyond it the oldest
// message that is not life safety is given up; life-safety ones are kept.
const maxQueue = 10000

type target struct {
	name, kind string
	n          *Notifier
	send       Sender
	lim        *rate.Limiter
	timeout    time.Duration // per request

	mu   sync.Mutex
	q    []*Message
	wake chan struct{}
}

func newTarget(c config.NotifyTarget, s Sender, n *Notifier) *target {
	rpm := c.RatePerMinute
	if rpm <= 0 {
		rpm = 20 // WeCom's documented robot limit
	}
	to := c.Timeout.D()
	if to <= 0 {
		to = 10 * time.Second
	}
	return &target{name: c.Name, kind: c.Kind, n: n, send: s, timeout: to,
		lim:  rate.NewLimiter(rate.Limit(float64(rpm)/60), max(1, rpm/4)),
		wake: make(chan struct{}, 1)}
}

func (t *target) push(m *Message) {
	t.mu.Lock()
	t.q = append(t.q, m)
	var dropped *Message
	if len(t.q) > maxQueue {
		for i, x := range t.q {
			if x.Priority != alarm.PriorityLife {
				dropped = x
				t.q = append(t.q[:i], t.q[i+1:]...)
				break
			}
		}
	}
	n := len(t.q)
	t.mu.Unlock()
	t.n.met.depth.WithLabelValues(t.name).Set(float64(n))
	if dropped != nil {
		t.n.met.skipped.WithLabelValues(t.name, "queue_full").Inc()
		t.n.log.Warn("notify: queue full, oldest routine message given up", "target", t.name, "alarm", dropped.AlarmID)
		if dropped.stored {
			_ = t.n.queue.remove(dropped.ID)
		}
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// head stores every message not stored yet, then returns the first one.
func (t *target) head() *Message {
	t.mu.Lock()
	var fresh []*Message
	for _, m := range t.q {
		if !m.stored && m.ID == 0 {
			fresh = append(fresh, m)
		}
	}
	t.mu.Unlock()
	if len(fresh) > 0 {
		if err := t.n.queue.store(fresh); err != nil {
			t.n.met.storeErrors.Inc()
			t.n.log.Warn("notify: queue not stored; sending from memory", "target", t.name, "err", err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.q) == 0 {
		return nil
	}
	return t.q[0]
}

func (t *target) pop(m *Message) {
	t.mu.Lock()
	if len(t.q) > 0 && t.q[0] == m {
		t.q = t.q[1:]
	}
	n := len(t.q)
	t.mu.Unlock()
	t.n.met.depth.WithLabelValues(t.name).Set(float64(n))
	if m.stored {
		if err := t.n.queue.remove(m.ID); err != nil {
			t.n.met.storeErrors.Inc()
			t.n.log.Warn("notify: sent message stays in the queue file; it may be sent again after a restart", "target", t.name, "err", err)
		}
	}
}

// run sends the queue in order until ctx ends.
func (t *target) run(ctx context.Context) {
	for {
		m := t.head()
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			}
		}
		if !t.wait(ctx, time.Until(m.next)) {
			return
		}
		life := m.Priority == alarm.PriorityLife
		if !life && time.Since(m.Created) > t.n.o.MaxAge {
			t.giveUp(ctx, m, "expired")
			continue
		}
		if m.attempts == 0 && !t.lim.Allow() {
			if !life {
				t.giveUp(ctx, m, "rate")
				continue
			}
			// Life safety is never dropped: it waits for the next token.
			if err := t.lim.Wait(ctx); err != nil {
				return
			}
		}
		sctx, cancel := context.WithTimeout(ctx, t.timeout)
		err := t.send.Send(sctx, m)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.attempts++
		if err == nil {
			t.pop(m)
			t.n.met.sent.WithLabelValues(t.name).Inc()
			t.n.met.latency.WithLabelValues(t.name).Observe(time.Since(m.Created).Seconds())
			note := t.name
			if m.attempts > 1 {
				note = fmt.Sprintf("%s (%d)", t.name, m.attempts)
			}
			t.n.annotate(ctx, m, alarm.ActNotified, note)
			continue
		}
		t.n.met.failed.WithLabelValues(t.name).Inc()
		var perm permanentError
		if errors.As(err, &perm) && !life {
			t.n.log.Error("notify: target refused the message", "target", t.name, "alarm", m.AlarmID, "err", err)
			t.giveUp(ctx, m, "refused")
			continue
		}
		d := t.backoff(m.attempts)
		m.next = time.Now().Add(d)
		t.n.log.Warn("notify: send failed; retrying", "target", t.name, "alarm", m.AlarmID, "attempt", m.attempts, "retry_in", d, "err", err)
		if m.attempts == 1 || m.attempts%10 == 0 {
			t.n.annotate(ctx, m, alarm.ActNotifyFailed, fmt.Sprintf("%s (%d): %v", t.name, m.attempts, err))
		}
	}
}

func (t *target) giveUp(ctx context.Context, m *Message, reason string) {
	t.pop(m)
	t.n.met.skipped.WithLabelValues(t.name, reason).Inc()
	t.n.log.Warn("notify: message given up", "target", t.name, "alarm", m.AlarmID, "reason", reason)
	t.n.annotate(ctx, m, alarm.ActNotifySkip, t.name+": "+reason)
}

// wait sleeps d, waking early for nothing but ctx; false when ctx ended.
func (t *target) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// backoff doubles from MinBackoff to MaxBackoff with ±20 % jitter.
func (t *target) backoff(attempt int) time.Duration {
	d := t.n.o.MinBackoff
	for i := 1; i < attempt && d < t.n.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, t.n.o.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
