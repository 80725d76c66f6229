// Package notify pushes alarms to people who are not at the console: WeCom
// and DingTalk group robots, a JSON webhook and an SMS/voice gateway reached
// by an HTTP template. Routes pick targets by alarm type, priority, place,
// time of day and change; a device may add its own targets (a resident's
// family) for its life-safety alarms.
//
// Each target has its own queue, kept in the gateway's bbolt file before the
// first try, sent in order and retried with backoff, so a dead WeCom never
// holds up the SMS gateway and a restart loses nothing queued. Over a
// target's rate, life-safety messages wait and others are skipped (counted
// and on the timeline). Every delivery, failure and skip is on the alarm's
// timeline and in /metrics.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/i18n"
	"github.com/smartcommunity/warden/edge/store"
)

// Timeline records deliveries on the alarm; *alarm.Manager implements it.
type Timeline interface {
	Annotate(ctx context.Context, id string, e alarm.Entry) (*alarm.Alarm, error)
}

// Media opens a stored snapshot; *store.Store implements it.
type Media interface {
	OpenMedia(id string) (*os.File, store.MediaInfo, error)
}

// Options configure a Notifier.
type Options struct {
	Config  config.Notify
	Devices []config.Device // devices[].notify: extra targets for their life-safety alarms
	// EscalateAfter is alarms.escalate_after, for the escalation text.
	EscalateAfter time.Duration
	DB            *bbolt.DB // queues survive restarts in bucket notify.queue; nil: memory only
	Timeline      Timeline  // nil: no timeline entries
	Media         Media     // nil: no pictures attached
	Lang          string    // message language, zh-CN (default) or en
	Places        i18n.Places
	Client        *http.Client
	// MinBackoff and MaxBackoff bound the retry delay (1s, 5m).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge: a message that is not life safety is given up after it (24h).
	MaxAge     time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Notifier routes alarm changes to targets. Create it with New, pass
// Observe to the alarm manager and run Run.
type Notifier struct {
	o       Options
	log     *slog.Logger
	met     *metrics
	targets map[string]*target
	order   []*target
	routes  []route
	devices map[string][]string // device id → extra targets
	queue   *queue
}

// New checks the config and loads the queued messages. Targets and routes
// were validated with the config; New refuses what it cannot use anyway.
func New(o Options) (*Notifier, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Lang == "" {
		o.Lang = i18n.ZH
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(o.MinBackoff, 5*time.Minute)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	n := &Notifier{o: o, log: o.Logger.With("component", "notify"), met: met, targets: map[string]*target{}, devices: map[string][]string{}}
	for _, tc := range o.Config.Targets {
		s, err := newSender(tc, o)
		if err != nil {
			return nil, fmt.Errorf("notify: target %s: %w", tc.Name, err)
		}
		t := newTarget(tc, s, n)
		n.targets[tc.Name] = t
		n.order = append(n.order, t)
	}
	for i, rc := range o.Config.Routes {
		for _, name := range rc.Targets {
			if n.targets[name] == nil {
				return nil, fmt.Errorf("notify: routes[%d]: no target %q", i, name)
			}
		}
		n.routes = append(n.routes, newRoute(rc))
	}
	for _, d := range o.Devices {
		for _, name := range d.Notify {
			if n.targets[name] == nil {
				return nil, fmt.Errorf("notify: device %s: no target %q", d.ID, name)
			}
		}
		if len(d.Notify) > 0 {
			n.devices[d.ID] = slices.Clone(d.Notify)
		}
	}
	if n.queue, err = openQueue(o.DB); err != nil {
		return nil, err
	}
	msgs, err := n.queue.load()
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		t := n.targets[m.Target]
		if t == nil {
			n.log.Warn("notify: dropping a queued message for a target no longer configured", "target", m.Target, "alarm", m.AlarmID)
			n.queue.remove(m.ID)
			continue
		}
		t.push(m)
	}
	if len(msgs) > 0 {
		n.log.Info("notify: queued messages restored", "messages", len(msgs))
	}
	return n, nil
}

// Enabled reports whether any target is configured.
func (n *Notifier) Enabled() bool { return len(n.order) > 0 }

// Observe is the alarm manager's Notify callback. It runs with the
// manager's lock held, so it only routes and queues in memory; each
// target's goroutine stores and sends.
func (n *Notifier) Observe(c alarm.Change) {
	switch c.Action {
	case alarm.ActOpened, alarm.ActEscalated, alarm.ActAcknowledged, alarm.ActResolved:
	default:
		return // repeats, clears and our own timeline notes are not news to push
	}
	now := time.Now()
	var names []string
	add := func(ns ...string) {
		for _, name := range ns {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	for _, r := range n.routes {
		if r.match(&c.Alarm, c.Action, now) {
			add(r.targets...)
		}
	}
	if c.Alarm.Priority == alarm.PriorityLife && (c.Action == alarm.ActOpened || c.Action == alarm.ActEscalated) {
		add(n.devices[c.Alarm.Source.ID]...)
	}
	if len(names) == 0 {
		return
	}
	body := n.render(&c.Alarm, c.Action)
	for _, name := range names {
		t := n.targets[name]
		m := body.forTarget(name, now)
		t.push(m)
		n.met.queued.WithLabelValues(name).Inc()
	}
}

// Run sends until ctx ends: one goroutine per target.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range n.order {
		wg.Go(func() { t.run(ctx) })
	}
	wg.Wait()
	return nil
}

// annotate puts a delivery step on the alarm's timeline; failures there are
// logged, never retried (the message itself is what matters).
func (n *Notifier) annotate(ctx context.Context, m *Message, action, note string) {
	if n.o.Timeline == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := n.o.Timeline.Annotate(actx, m.AlarmID, alarm.Entry{At: time.Now().UTC(), Action: action, By: "notify", Note: note})
	if err != nil {
		n.log.Warn("notify: timeline", "alarm", m.AlarmID, "err", err)
	}
}
