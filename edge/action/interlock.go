package action

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Sink commits events the interlock raises itself (valve.fault).
type Sink interface {
	Append(ctx context.Context, evs ...*event.Event) error
}

// DefaultConfirmTimeout is how long a valve has to report closed.
const DefaultConfirmTimeout = 10 * time.Second

// Tries is how many close commands are sent before valve.fault.
const Tries = 3

// Interlock closes a home's gas valves the moment its detector reports a
// leak, sounds the sirens, and watches for the valve to report closed.
// Commands go out from React, on the ingest path, before the event is
// stored. It never opens a valve.
type Interlock struct {
	act      *Actuators
	sink     Sink
	unstored func(evs ...*event.Event)
	gw, sit  string
	confirm  time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingClose
	wake    chan struct{}
	beat    atomic.Int64 // unix nanos of Run's last turn (liveness)

	faults   prometheus.Counter
	confirms prometheus.Histogram
}

type pendingClose struct {
	valve    config.Device
	detector config.Device // whose leak asked for the close
	cause    string        // the gas.leak event id
	sentAt   time.Time
	try      int
	next     time.Time     // next retry, or the fault deadline after the last try
	window   time.Duration // the valve's confirm timeout
}

// InterlockOptions configure the interlock.
type InterlockOptions struct {
	Gateway, Site  string
	ConfirmTimeout time.Duration
	Sink           Sink
	// Unstored gets a valve.fault the Sink refused (a full disk): guards
	// must still see it, and it is stored once the disk recovers.
	Unstored   func(evs ...*event.Event)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// NewInterlock builds the interlock over the actuators.
func NewInterlock(a *Actuators, o InterlockOptions) (*Interlock, error) {
	if o.ConfirmTimeout <= 0 {
		o.ConfirmTimeout = DefaultConfirmTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := promauto.With(o.Registerer)
	i := &Interlock{
		act: a, sink: o.Sink, unstored: o.Unstored, gw: o.Gateway, sit: o.Site, confirm: o.ConfirmTimeout,
		log: o.Logger.With("component", "interlock"), now: time.Now,
		pending: map[string]*pendingClose{}, wake: make(chan struct{}, 1),
		faults:   f.NewCounter(prometheus.CounterOpts{Name: "warden_interlock_valve_faults_total", Help: "Valves that did not report closed after every try."}),
		confirms: f.NewHistogram(prometheus.HistogramOpts{Name: "warden_interlock_confirm_seconds", Help: "Time from the first close command to the valve reporting closed.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)}),
	}
	return i, nil
}

// retryAt is when try n+1 goes out, as a fraction of the confirm timeout:
// gaps double (1/7, 2/7, 4/7), so three tries fit the window and the fault
// is raised at exactly ConfirmTimeout.
func retryAt(p *pendingClose) time.Time {
	steps := []int{1, 3, 7} // cumulative sevenths
	return p.sentAt.Add(p.window * time.Duration(steps[min(p.try, len(steps))-1]) / 7)
}

// React is called for every message of a known device, with the events its
// driver produced. It must not block.
func (i *Interlock) React(dev config.Device, m drivers.Message, evs []*event.Event) []*event.Event {
	if dev.Kind == "gas_valve" {
		if closed, ok := i.act.IsClosed(dev.ID, m.Payload); ok && closed {
			i.confirmed(dev.ID)
		}
	}
	for _, e := range evs {
		switch e.Type {
		case event.GasLeak:
			i.leak(dev, e)
		case event.ValveClosed:
			i.confirmed(e.Source.ID)
		}
	}
	return evs
}

func (i *Interlock) leak(det config.Device, e *event.Event) {
	valves := stringsOf(e.Data["valves"])
	if len(valves) == 0 {
		valves = i.act.Named(det.ID, "gas_valve")
	}
	if len(valves) == 0 {
		i.log.Error("gas leak but no valve configured for detector", "device", det.ID, "event", e.ID)
	}
	now := i.now()
	for _, v := range valves {
		if err := i.act.Send(v, "close"); err != nil {
			i.log.Error("close valve", "valve", v, "detector", det.ID, "err", err)
		}
		cfg, ok := i.act.Device(v)
		if !ok {
			continue
		}
		i.mu.Lock()
		if _, already := i.pending[v]; !already {
			p := &pendingClose{valve: cfg, detector: det, cause: e.ID, sentAt: now, try: 1, window: i.confirm}
			if w := i.act.ConfirmTimeout(v); w > 0 {
				p.window = w
			}
			p.next = retryAt(p)
			i.pending[v] = p
		}
		i.mu.Unlock()
	}
	for _, s := range i.sirens(det, e) {
		if err := i.act.Send(s, "on"); err != nil {
			i.log.Error("siren on", "siren", s, "detector", det.ID, "err", err)
		}
	}
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

// sirens are the detector's own, else every siren in its building.
func (i *Interlock) sirens(det config.Device, e *event.Event) []string {
	if s := stringsOf(e.Data["sirens"]); len(s) > 0 {
		return s
	}
	if s := i.act.Named(det.ID, "siren"); len(s) > 0 {
		return s
	}
	var out []string
	for _, s := range i.act.Kind("siren") {
		if det.Location.Building != "" && s.Location.Building == det.Location.Building {
			out = append(out, s.ID)
		}
	}
	slices.Sort(out)
	return out
}

func (i *Interlock) confirmed(valve string) {
	i.mu.Lock()
	p, ok := i.pending[valve]
	delete(i.pending, valve)
	i.mu.Unlock()
	if ok {
		d := i.now().Sub(p.sentAt)
		i.confirms.Observe(d.Seconds())
		i.log.Info("valve confirmed closed", "valve", valve, "after", d, "tries", p.try)
	}
}

// Pending lists valves still waiting to report closed.
func (i *Interlock) Pending() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.pending))
	for v := range i.pending {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Run retries unconfirmed closes and raises valve.fault until ctx ends.
func (i *Interlock) Run(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		i.beat.Store(time.Now().UnixNano())
		next := i.tick(ctx)
		d := beatEvery
		if !next.IsZero() {
			d = min(max(time.Until(next), time.Millisecond), beatEvery)
		}
		t.Reset(d)
		select {
		case <-ctx.Done():
			return nil
		case <-i.wake:
		case <-t.C:
		}
	}
}

// beatEvery is how often Run turns when idle, to show it is alive.
const beatEvery = 2 * time.Second

// Alive is nil while Run turns: the systemd watchdog follows the safety
// loop, not readiness, so a full disk never gets the interlock killed.
func (i *Interlock) Alive() error {
	last := i.beat.Load()
	if last == 0 {
		return errors.New("interlock: not running")
	}
	if age := time.Since(time.Unix(0, last)); age > 5*beatEvery {
		return fmt.Errorf("interlock: loop stuck for %s", age.Round(time.Second))
	}
	return nil
}

// tick acts on due valves and returns the next deadline.
func (i *Interlock) tick(ctx context.Context) time.Time {
	now := i.now()
	var retry []string
	var faults []*pendingClose
	var next time.Time
	i.mu.Lock()
	for v, p := range i.pending {
		if now.Before(p.next) {
			if next.IsZero() || p.next.Before(next) {
				next = p.next
			}
			continue
		}
		if p.try >= Tries {
			faults = append(faults, p)
			delete(i.pending, v)
			continue
		}
		p.try++
		p.next = retryAt(p)
		retry = append(retry, v)
		if next.IsZero() || p.next.Before(next) {
			next = p.next
		}
	}
	i.mu.Unlock()
	for _, v := range retry {
		i.log.Warn("valve not confirmed closed; sending close again", "valve", v)
		if err := i.act.Send(v, "close"); err != nil {
			i.log.Error("close valve retry", "valve", v, "err", err)
		}
	}
	for _, p := range faults {
		i.fault(ctx, p)
	}
	return next
}

func (i *Interlock) fault(ctx context.Context, p *pendingClose) {
	i.faults.Inc()
	reason := fmt.Sprintf("no closed state within %s after %d close commands", p.window, p.try)
	i.log.Error("valve fault", "valve", p.valve.ID, "reason", reason, "cause", p.cause)
	e := event.NewValveFault(event.Origin{
		Gateway: i.gw, Site: i.sit, Time: i.now(),
		Source:   event.Source{Kind: p.valve.Kind, ID: p.valve.ID},
		Location: p.valve.Location,
	}, reason)
	e.Data["cause"] = p.cause
	// The leak's sirens may have been silenced meanwhile: a valve that did
	// not close is a reason to sound them again.
	for _, s := range i.sirens(p.detector, e) {
		if err := i.act.Send(s, "on"); err != nil {
			i.log.Error("siren on for valve fault", "siren", s, "valve", p.valve.ID, "err", err)
		}
	}
	if i.sink == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := i.sink.Append(actx, e); err != nil {
		i.log.Error("valve fault event not stored; shown from memory and stored when the disk recovers", "valve", p.valve.ID, "err", err)
		if i.unstored != nil {
			i.unstored(e)
		}
	}
}

// stringsOf reads a string or list of strings from event data.
func stringsOf(v any) []string {
	switch s := v.(type) {
	case string:
		if s != "" {
			return []string{s}
		}
	case []string:
		return s
	case []any:
		var out []string
		for _, x := range s {
			if str, ok := x.(string); ok && str != "" {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}
