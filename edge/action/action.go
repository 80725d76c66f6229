// Package action drives actuators (gas valves, barrier gates, sirens) and
// holds the gas interlock. Commands are fire-and-forget MQTT publishes: no
// storage, uplink or API call sits between a detector and its valve.
package action

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
)

// Publisher sends a command without blocking the caller.
type Publisher interface {
	PublishNoWait(topic string, qos byte, retain bool, payload []byte)
}

// Actuators knows every device that takes commands.
type Actuators struct {
	log   *slog.Logger
	audit *audit.Log
	pub   atomic.Pointer[publisherBox]
	mu    sync.Mutex // guards early
	early []command
	devs  map[string]*actuator
	named map[string]drivers.Device // devices that name actuators (drivers.Linker)
	sent  *prometheus.CounterVec
}

type publisherBox struct{ p Publisher }

type actuator struct {
	cfg config.Device
	cmd drivers.Commander
	dev drivers.Device
}

// ErrUnknownDevice is returned for an id that is not a commandable device.
var ErrUnknownDevice = errors.New("no such actuator")

// NewActuators builds command-capable devices from config through the
// registry. The audit log may be nil in tests of the interlock alone.
func NewActuators(devs []config.Device, reg *drivers.Registry, al *audit.Log, log *slog.Logger, r prometheus.Registerer) (*Actuators, error) {
	if log == nil {
		log = slog.Default()
	}
	f := promauto.With(r)
	a := &Actuators{log: log.With("component", "action"), audit: al, devs: map[string]*actuator{}, named: map[string]drivers.Device{},
		sent: f.NewCounterVec(prometheus.CounterOpts{Name: "warden_actions_total", Help: "Commands sent to actuators, by device kind, action and result."}, []string{"kind", "action", "result"})}
	for _, d := range devs {
		dev, probs := reg.New(d)
		if len(probs) > 0 {
			return nil, fmt.Errorf("device %s: %s", d.ID, probs[0])
		}
		if c, ok := dev.(drivers.Commander); ok {
			a.devs[d.ID] = &actuator{cfg: d, cmd: c, dev: dev}
		}
		if _, ok := dev.(drivers.Linker); ok {
			a.named[d.ID] = dev
		}
	}
	return a, nil
}

type command struct {
	topic   string
	payload []byte
}

// publish sends now, or queues when the client is not there yet: messages
// redelivered right after CONNACK can arrive before Connect has returned.
func (a *Actuators) publish(topic string, payload []byte) bool {
	if box := a.pub.Load(); box != nil {
		box.p.PublishNoWait(topic, 1, false, payload)
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if box := a.pub.Load(); box != nil { // set while we waited for the lock
		box.p.PublishNoWait(topic, 1, false, payload)
		return true
	}
	a.early = append(a.early, command{topic, payload})
	return false
}

// SetPublisher connects the actuators to the MQTT client once it exists and
// sends anything queued before.
func (a *Actuators) SetPublisher(p Publisher) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.early {
		p.PublishNoWait(c.topic, 1, false, c.payload)
	}
	a.early = nil
	a.pub.Store(&publisherBox{p})
}

// Device returns the config of an actuator.
func (a *Actuators) Device(id string) (config.Device, bool) {
	act, ok := a.devs[id]
	if !ok {
		return config.Device{}, false
	}
	return act.cfg, true
}

// Named lists the actuators of a kind that device id names in its options
// (a gas detector's valves).
func (a *Actuators) Named(id, kind string) []string {
	return drivers.LinksOf(a.named[id], kind)
}

// Kind lists actuators of a kind, for example every siren.
func (a *Actuators) Kind(kind string) []config.Device {
	var out []config.Device
	for _, act := range a.devs {
		if act.cfg.Kind == kind {
			out = append(out, act.cfg)
		}
	}
	return out
}

// ErrNeedsPerson is returned when code asks to open a gas valve: only a
// person may, through Do (the audited API, admin role, with a note).
var ErrNeedsPerson = errors.New("only an admin through the audited API may open a gas valve")

// Send publishes a command at once. It never blocks: the MQTT client queues
// it while the broker is unreachable. It never opens a gas valve.
func (a *Actuators) Send(id, action string) error {
	if a.opensValve(id, action) {
		a.sent.WithLabelValues("gas_valve", action, "refused").Inc()
		return fmt.Errorf("device %s: %w", id, ErrNeedsPerson)
	}
	return a.send(id, action)
}

func (a *Actuators) opensValve(id, action string) bool {
	act, ok := a.devs[id]
	return ok && act.cfg.Kind == "gas_valve" && action == "open"
}

func (a *Actuators) send(id, action string) error {
	act, ok := a.devs[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	topic, payload, err := act.cmd.Command(action)
	if err != nil {
		a.sent.WithLabelValues(act.cfg.Kind, action, "error").Inc()
		return fmt.Errorf("device %s: command %s: %w", id, action, err)
	}
	if !a.publish(topic, payload) {
		a.sent.WithLabelValues(act.cfg.Kind, action, "queued").Inc()
		a.log.Warn("command queued until the MQTT client is up", "device", id, "action", action)
		return nil
	}
	a.sent.WithLabelValues(act.cfg.Kind, action, "sent").Inc()
	a.log.Info("command sent", "device", id, "kind", act.cfg.Kind, "action", action, "topic", topic)
	return nil
}

// Do is a person's command through the API: it is audited, success or not.
// Opening a gas valve needs a named actor and a note.
func (a *Actuators) Do(id, action, actor, note string) error {
	var err error
	if a.opensValve(id, action) && (actor == "" || strings.TrimSpace(note) == "") {
		err = fmt.Errorf("device %s: opening a gas valve needs a named person and a note: %w", id, ErrNeedsPerson)
	} else {
		err = a.send(id, action)
	}
	if a.audit != nil {
		e := audit.Entry{Actor: actor, Action: "device." + action, Target: id, Detail: map[string]any{"note": note}}
		if err != nil {
			e.Error = err.Error()
		}
		if _, aerr := a.audit.Record(e); aerr != nil && err == nil {
			a.log.Error("audit record failed", "err", aerr)
		}
	}
	return err
}

// valveState reads a valve's state payload.
type valveState interface {
	IsClosed(payload []byte) (closed, ok bool)
}

// ConfirmTimeout is a valve's own confirm_timeout, or 0.
func (a *Actuators) ConfirmTimeout(id string) time.Duration {
	if act, ok := a.devs[id]; ok {
		if c, ok := act.dev.(interface{ ConfirmTimeout() time.Duration }); ok {
			return c.ConfirmTimeout()
		}
	}
	return 0
}

// IsClosed asks the valve's driver whether a payload reports it closed.
func (a *Actuators) IsClosed(id string, payload []byte) (closed, ok bool) {
	act, found := a.devs[id]
	if !found {
		return false, false
	}
	if vs, isValve := act.dev.(valveState); isValve {
		return vs.IsClosed(payload)
	}
	return false, false
}
