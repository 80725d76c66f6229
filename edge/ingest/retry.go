package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smartcommunity/warden/edge/api"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

func (r *Router) queueRetry(req *store.Request) {
	r.retryMu.Lock()
	r.retry = append(r.retry, req)
	n := len(r.retry)
	r.retryMu.Unlock()
	r.m.pending.Set(float64(n))
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// maxHeld bounds the critical events kept in memory for a device that may
// never resend (a clean-session client drops its unacknowledged publishes
// when it is disconnected).
const maxHeld = 10000

// holdCritical keeps the critical events of a refused inline publish and
// retries them with the other failed commits. The device's resend (DUP)
// and this copy share the dedup key and both skip if seen, so whichever
// commits second is dropped: a gas leak is stored once the disk recovers
// even if the device never sends it again.
func (r *Router) holdCritical(req *store.Request) {
	if !slices.ContainsFunc(req.Events, func(e *event.Event) bool { return e.Severity == event.Critical }) {
		return
	}
	r.retryMu.Lock()
	full := len(r.retry) >= maxHeld
	r.retryMu.Unlock()
	if full {
		r.logLimited("too many device messages wait for the store; a critical one is left to the device's resend", "events", len(req.Events))
		return
	}
	h := &store.Request{Events: req.Events, DedupKey: req.DedupKey, SkipIfSeen: true}
	h.Done = func(res store.Result) {
		if res.Err != nil {
			r.queueRetry(h)
		}
	}
	r.queueRetry(h)
}

// Run resubmits commits that failed (full disk, I/O error) with backoff
// until they succeed or ctx ends. Unacked messages stay with the broker, so
// stopping here loses nothing.
func (r *Router) Run(ctx context.Context) error {
	delay := r.opts.RetryDelay
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		r.retryMu.Lock()
		batch := r.retry
		r.retry = nil
		r.retryMu.Unlock()
		r.m.pending.Set(0)
		for _, req := range batch {
			r.opts.Store.Submit(req)
		}
		// Back off while failures keep coming; a success resets the delay.
		r.retryMu.Lock()
		failing := len(r.retry) > 0
		r.retryMu.Unlock()
		if failing {
			delay = min(delay*2, 30*time.Second)
		} else {
			delay = r.opts.RetryDelay
		}
	}
}

// Healthy is nil unless commits are failing: messages wait for a retry, or
// Ingest's latest commit failed.
func (r *Router) Healthy() error {
	r.retryMu.Lock()
	n := len(r.retry)
	r.retryMu.Unlock()
	if n > 0 {
		return fmt.Errorf("%d device messages wait to be committed (store failing)", n)
	}
	if r.inlineFailing.Load() {
		return errors.New("the last device message could not be committed (store failing); devices resend")
	}
	return nil
}

// DeviceStatus is what the API shows per device.
type DeviceStatus struct {
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Driver   string         `json:"driver"`
	Topic    string         `json:"topic"`
	Location event.Location `json:"location"`
	LastSeen time.Time      `json:"last_seen,omitzero"`
	Messages uint64         `json:"messages"`
	LastType string         `json:"last_event,omitempty"`
	// Readings are the driver's last measurements (heart_rate, battery).
	Readings map[string]float64 `json:"readings,omitempty"`
}

// Status is GET /api/v1/devices: every configured device in config order,
// with seen (liveness) telling when each was last heard and whether it
// counts as online.
func (r *Router) Status(seen func(id string) (time.Time, bool)) []api.DeviceStatus {
	ds := r.Devices()
	out := make([]api.DeviceStatus, len(ds))
	for i, d := range ds {
		last, online := seen(d.ID)
		state := map[string]any{"messages": d.Messages, "last_event": d.LastType}
		if len(d.Readings) > 0 {
			state["readings"] = d.Readings
		}
		out[i] = api.DeviceStatus{ID: d.ID, Kind: d.Kind, Driver: d.Driver, Location: d.Location, LastSeen: last,
			Online: online, State: state}
	}
	return out
}

// Devices reports every configured device in config order.
func (r *Router) Devices() []DeviceStatus {
	out := make([]DeviceStatus, 0, len(r.list))
	for _, d := range r.list {
		d.mu.Lock()
		out = append(out, DeviceStatus{
			ID: d.cfg.ID, Kind: d.cfg.Kind, Driver: d.cfg.Driver, Topic: d.cfg.Topic, Location: d.cfg.Location,
			LastSeen: d.lastSeen, Messages: d.messages, LastType: d.lastType, Readings: d.readings,
		})
		d.mu.Unlock()
	}
	return out
}
