// Package ingest turns device messages into committed events. It sits
// between MQTT and the store: look up the device by topic, parse with its
// driver, let the safety actor react at once, then submit for group commit
// and acknowledge the MQTT message only after the commit (so a crash loses
// nothing: what was not acknowledged is sent again).
//
// Two entry points: Handle for a subscriber (external broker; Message.Ack
// sends the PUBACK after the commit, failed commits are retried by Run) and
// Ingest for the embedded broker, which calls it from its OnPublish hook
// and PUBACKs the device only once Ingest's done reports the commit. Ingest
// does not retry: an error makes the broker refuse the publish so the
// device resends it, and the event store's group commit is the only fsync
// on the path.
// Both are safe for concurrent use: each device's driver and actors run
// under that device's lock (per-device state and order), devices in
// parallel.
package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// Submitter is the store's group-commit entry point.
type Submitter interface {
	Submit(r *store.Request)
}

// Actor is a stage between a driver and the store. It sees every message of
// a known device and the events its driver implied, and returns the events
// to commit: it may adjust them (a disarmed zone lowers an intrusion, the
// gate decides a plate) or add some (gate.denied). Actors act at once here
// (close a valve, open a gate) because nothing slow may sit between a
// detector and its actuator; React must never block.
type Actor interface {
	React(dev config.Device, m drivers.Message, evs []*event.Event) []*event.Event
}

// Message is one device message as the MQTT client hands it over.
type Message struct {
	Topic    string
	Payload  []byte
	Dup      bool // redelivery: the broker may have sent it before a crash
	Received time.Time
	Ack      func() // sends the PUBACK; called once, after commit
}

// MediaPutter stores a picture (the event store's media).
type MediaPutter interface {
	PutMedia(kind, contentType string, data []byte) (store.MediaInfo, error)
}

// Options are the router's dependencies.
type Options struct {
	Gateway, Site string
	Devices       []config.Device
	Registry      *drivers.Registry
	Store         Submitter
	// Media stores pictures devices send (event attachments); nil = they
	// are dropped, with a count.
	Media           MediaPutter
	Actors          []Actor // run in order before the commit
	MaxPayloadBytes int
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
	// RetryDelay is the first wait before a failed commit is retried.
	RetryDelay time.Duration
	// Unstored, when set, gets the events of a failed commit at once, so
	// guards see a leak while the disk fails (the message itself is
	// committed later: resent by the device or retried here). It must not
	// block.
	Unstored func(evs ...*event.Event)
}

type device struct {
	cfg config.Device
	drv drivers.Device

	// order serialises driver, actors and submission per device: drivers
	// keep per-device state without locks, and submission order is commit
	// order.
	order sync.Mutex

	mu       sync.Mutex
	lastSeen time.Time
	messages uint64
	lastType string
	readings map[string]float64
}

// Router routes device messages to their drivers. Handle and Ingest may be
// called concurrently; messages of one device are processed one at a time.
type Router struct {
	opts    Options
	log     *slog.Logger
	byTopic map[string]*device
	list    []*device
	limiter *rate.Limiter
	m       metrics

	retryMu sync.Mutex
	retry   []*store.Request
	wake    chan struct{}

	// inlineFailing is set while Ingest's last commit failed (readiness).
	inlineFailing atomic.Bool
}

type metrics struct {
	messages  *prometheus.CounterVec
	invalid   *prometheus.CounterVec
	dups      prometheus.Counter
	ignored   prometheus.Counter
	commitErr prometheus.Counter
	attachErr prometheus.Counter
	pending   prometheus.Gauge
}

// New builds every configured device through the registry.
func New(o Options) (*Router, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxPayloadBytes <= 0 {
		o.MaxPayloadBytes = config.DefaultMaxPayload
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 500 * time.Millisecond
	}
	if o.Registry == nil {
		o.Registry = drivers.Default
	}
	r := &Router{
		opts: o, log: o.Logger.With("component", "ingest"),
		byTopic: map[string]*device{},
		limiter: rate.NewLimiter(rate.Every(time.Second), 10),
		wake:    make(chan struct{}, 1),
	}
	for _, dc := range o.Devices {
		drv, probs := o.Registry.New(dc)
		if len(probs) > 0 {
			return nil, fmt.Errorf("device %s: %s", dc.ID, probs[0])
		}
		d := &device{cfg: dc, drv: drv}
		r.list = append(r.list, d)
		for _, t := range drv.Topics() {
			if prev, dup := r.byTopic[t]; dup {
				return nil, fmt.Errorf("device %s: topic %q is also used by device %s", dc.ID, t, prev.cfg.ID)
			}
			r.byTopic[t] = d
		}
	}
	f := promauto.With(o.Registerer)
	r.m = metrics{
		messages:  f.NewCounterVec(prometheus.CounterOpts{Name: "warden_device_messages_total", Help: "Device messages received, by device kind."}, []string{"kind"}),
		invalid:   f.NewCounterVec(prometheus.CounterOpts{Name: "warden_invalid_payloads_total", Help: "Device messages rejected and dead-lettered, by reason."}, []string{"reason"}),
		ignored:   f.NewCounter(prometheus.CounterOpts{Name: "warden_ingest_ignored_total", Help: "Messages under device prefixes that are not device reports (commands, zigbee2mqtt bridge)."}),
		dups:      f.NewCounter(prometheus.CounterOpts{Name: "warden_ingest_redelivered_duplicates_total", Help: "Redelivered messages already committed before a crash."}),
		attachErr: f.NewCounter(prometheus.CounterOpts{Name: "warden_ingest_attachments_dropped_total", Help: "Pictures sent with device messages that could not be stored (the event goes on without them)."}),
		commitErr: f.NewCounter(prometheus.CounterOpts{Name: "warden_ingest_commit_failures_total", Help: "Commits of device messages that failed (retried, or refused to the publishing device when ingest runs inside the broker)."}),
		pending:   f.NewGauge(prometheus.GaugeOpts{Name: "warden_ingest_retry_pending", Help: "Device messages waiting to be committed again after a store failure."}),
	}
	return r, nil
}

// Filters are the MQTT subscriptions: the first level of every device topic
// with "/#", so a message from an unconfigured device or on an unmapped topic
// reaches the gateway and is dead-lettered instead of vanishing unseen.
func (r *Router) Filters() []string {
	seen := map[string]bool{}
	var out []string
	for t := range r.byTopic {
		f := t
		if first, _, ok := strings.Cut(t, "/"); ok && first != "" {
			f = first + "/#"
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// ignorable topics arrive under the device prefixes but are not device
// reports: commands (ours included), zigbee2mqtt's bridge, our own topics.
func ignorable(topic string) bool {
	for _, suf := range []string{"/set", "/get", "/command", "/cmd"} {
		if strings.HasSuffix(topic, suf) || strings.Contains(topic, suf+"/") {
			return true
		}
	}
	return strings.HasPrefix(topic, "warden/") || strings.Contains(topic, "/bridge/") || strings.HasSuffix(topic, "/bridge")
}

// Reason names why a message was dead-lettered; it is a metric label.
type Reason string

const (
	ReasonOversized Reason = "oversized"
	ReasonMalformed Reason = "malformed"
	ReasonWrongType Reason = "wrong_type"
	ReasonUnknown   Reason = "unknown_device"
)

// Handle processes one message. It never blocks on storage failures: the
// actor has already run, and a failed commit is retried in the background
// without acking, so the broker keeps the message across a crash.
func (r *Router) Handle(m Message) {
	r.route(m, func(err error) {
		if err == nil {
			m.ack()
		}
	}, false)
}

// ErrNotCommitted wraps a commit failure returned by Ingest.
var ErrNotCommitted = errors.New("ingest: not committed")

// Ingest processes one message for a caller that acknowledges it itself
// (the embedded broker). The driver and actors run before Ingest returns, in
// the caller's goroutine, so a caller that calls Ingest in arrival order
// keeps each device's order. done is called exactly once, possibly before
// Ingest returns, and must not block: nil when the message's events (or its
// dead letter) are committed or there was nothing to commit (ignored topics,
// a message the actors dropped); an error when nothing of it was committed,
// and then the publisher must send it again: it is not retried here. The
// actors have run either way, so a gas leak closes the valve even when the
// disk is full. m.Ack is not used.
func (r *Router) Ingest(m Message, done func(error)) {
	r.route(m, done, true)
}

// route runs the pipeline; done is called exactly once with the commit's
// outcome (nil when there was nothing to commit). With inline a failed
// commit goes to done; otherwise it is queued for retry and done is called
// only after a later commit succeeds.
func (r *Router) route(m Message, done func(error), inline bool) {
	if m.Received.IsZero() {
		m.Received = time.Now()
	}
	if len(m.Payload) > r.opts.MaxPayloadBytes {
		r.reject(m, "", ReasonOversized, fmt.Errorf("payload of %d bytes is over the %d byte limit", len(m.Payload), r.opts.MaxPayloadBytes), done, inline)
		return
	}
	d, ok := r.byTopic[m.Topic]
	if !ok {
		if ignorable(m.Topic) {
			r.m.ignored.Inc()
			done(nil)
			return
		}
		r.reject(m, "", ReasonUnknown, errors.New("no configured device uses this topic"), done, inline)
		return
	}
	r.m.messages.WithLabelValues(d.cfg.Kind).Inc()
	d.order.Lock()
	defer d.order.Unlock()
	origin := event.Origin{
		Gateway: r.opts.Gateway, Site: r.opts.Site, Time: m.Received,
		Source: event.Source{Kind: d.cfg.Kind, ID: d.cfg.ID}, Location: d.cfg.Location,
	}
	dm := drivers.Message{Topic: m.Topic, Payload: m.Payload, Time: m.Received}
	evs, err := d.drv.Handle(dm, origin)
	var readings map[string]float64
	if rd, ok := d.drv.(drivers.Reader); ok && err == nil {
		readings = rd.Readings()
	}
	d.mu.Lock()
	d.lastSeen = m.Received
	d.messages++
	if len(readings) > 0 {
		d.readings = readings
	}
	d.mu.Unlock()
	if err != nil {
		reason := ReasonMalformed
		if errors.Is(err, drivers.ErrWrongType) {
			reason = ReasonWrongType
		}
		r.reject(m, d.cfg.ID, reason, err, done, inline)
		return
	}
	for _, a := range r.opts.Actors {
		evs = a.React(d.cfg, dm, evs)
	}
	if len(evs) == 0 {
		done(nil)
		return
	}
	d.mu.Lock()
	d.lastType = evs[len(evs)-1].Type
	d.mu.Unlock()
	for _, e := range evs {
		r.attach(e)
	}
	r.submit(&store.Request{Events: evs, DedupKey: dedupKey(m), SkipIfSeen: m.Dup}, m, done, inline)
}

func (m Message) ack() {
	if m.Ack != nil {
		m.Ack()
	}
}

func (r *Router) submit(req *store.Request, m Message, done func(error), inline bool) {
	req.Done = func(res store.Result) {
		if res.Err != nil {
			r.m.commitErr.Inc()
			if r.opts.Unstored != nil && len(req.Events) > 0 {
				r.opts.Unstored(req.Events...)
			}
			if inline {
				r.inlineFailing.Store(true)
				r.logLimited("store commit failed; publish refused, the device resends it", "topic", m.Topic, "err", res.Err)
				r.holdCritical(req)
				done(fmt.Errorf("%w: %s: %w", ErrNotCommitted, m.Topic, res.Err))
				return
			}
			r.logLimited("store commit failed; message kept unacked and retried", "topic", m.Topic, "err", res.Err)
			r.queueRetry(req)
			return
		}
		if inline {
			r.inlineFailing.Store(false)
		}
		if res.Dup {
			r.m.dups.Inc()
		}
		done(nil)
	}
	r.opts.Store.Submit(req)
}

func (r *Router) reject(m Message, deviceID string, reason Reason, err error, done func(error), inline bool) {
	r.m.invalid.WithLabelValues(string(reason)).Inc()
	r.logLimited("device message rejected", "topic", m.Topic, "device", deviceID, "reason", reason, "bytes", len(m.Payload), "err", err)
	dl := &store.DeadLetter{Time: m.Received, Source: deviceID, Topic: m.Topic, Reason: fmt.Sprintf("%s: %v", reason, err), Payload: m.Payload, Size: len(m.Payload)}
	r.submit(&store.Request{DeadLetter: dl, DedupKey: dedupKey(m), SkipIfSeen: m.Dup}, m, done, inline)
}

// logLimited keeps a flood of bad messages from flooding the log; the
// metrics still count every one.
func (r *Router) logLimited(msg string, args ...any) {
	if r.limiter.Allow() {
		r.log.Warn(msg, args...)
	}
}

// dedupKey identifies a message across a redelivery: same topic, same bytes.
func dedupKey(m Message) string {
	h := sha256.Sum256(m.Payload)
	return m.Topic + "\x00" + hex.EncodeToString(h[:12])
}

// attach stores an event's pictures as media and names them in its Media.
// A picture that cannot be stored is dropped, never the event.
func (r *Router) attach(e *event.Event) {
	for _, a := range e.Attachments {
		if r.opts.Media == nil {
			r.m.attachErr.Inc()
			continue
		}
		mi, err := r.opts.Media.PutMedia(a.Kind, a.ContentType, a.Data)
		if err != nil {
			r.m.attachErr.Inc()
			r.logLimited("picture from a device not stored; the event goes on without it", "event_id", e.ID, "kind", a.Kind, "err", err)
			continue
		}
		e.Media = append(e.Media, event.Media{Kind: a.Kind, URL: MediaURL + mi.ID, SHA256: mi.SHA256})
	}
	e.Attachments = nil
}

// MediaURL is where the API serves a stored picture.
const MediaURL = "/api/v1/media/"
