package rules_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/rules"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

const wait = 30 * time.Second

// devicesYAML are the actuators every test config has.
const devicesYAML = `
gateway: {id: gw-test, site: xjl}
devices:
  - {id: valve-1, kind: gas_valve, driver: zigbee2mqtt, topic: z/valve-1, location: {building: "3", unit: "2", room: "201"}}
  - {id: gate-1, kind: barrier_gate, driver: generic, topic: lpr/gate-1, location: {zone: north}}
  - {id: siren-3a, kind: siren, driver: zigbee2mqtt, topic: z/siren-3a, location: {building: "3"}}
  - {id: siren-3b, kind: siren, driver: zigbee2mqtt, topic: z/siren-3b, location: {building: "3", unit: "1"}}
  - {id: siren-5, kind: siren, driver: zigbee2mqtt, topic: z/siren-5, location: {building: "5"}}
`

func parse(t *testing.T, rulesYAML string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(devicesYAML+rulesYAML), rules.Check, drivers.Default.Validate)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return c
}

// recv is one MQTT message the subscriber saw.
type recv struct{ topic, payload string }

// env is a real broker, the gateway's client, a subscriber, real
// actuators, a real store and a real alarm manager.
type env struct {
	t      *testing.T
	client *bus.Client
	msgs   chan recv
	act    *action.Actuators
	store  *store.Store
	alarms *alarm.Manager
	raised *raiser
	reg    *prometheus.Registry
}

func newEnv(t *testing.T, c *config.Config) *env {
	t.Helper()
	url, _ := bustest.Embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	e := &env{t: t, msgs: make(chan recv, 100), reg: prometheus.NewRegistry()}
	sub, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "sub-" + t.Name(), Subscriptions: []string{"#"},
		OnMessage: func(m *bus.Message) {
			m.Ack()
			if strings.HasPrefix(m.Topic, "warden/") {
				return
			}
			e.msgs <- recv{m.Topic, string(m.Payload)}
		}})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	e.client, err = bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "gw-" + t.Name()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = e.client.Close(context.Background()) })
	e.act, err = action.NewActuators(c.Devices, drivers.Default, nil, slog.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.act.SetPublisher(e.client)
	e.store = storetest.Open(t, store.Options{})
	e.alarms, err = alarm.New(alarm.Options{DB: e.store.DB(), Gateway: "gw-test", Site: "xjl"})
	if err != nil {
		t.Fatal(err)
	}
	e.raised = &raiser{m: e.alarms}
	return e
}

// raiser adapts the real alarm manager to rules.Alarms (as the gateway
// does) and keeps the events it was given, to look at their data.
type raiser struct {
	m   *alarm.Manager
	mu  sync.Mutex
	evs []event.Event
}

func (r *raiser) RaiseFor(ctx context.Context, e event.Event, key string, sev event.Severity, assign string) error {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
	return r.m.RaiseFor(ctx, e, key, sev, assign)
}

func (r *raiser) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.evs...)
}

func (e *env) engine(c *config.Config, mod func(*rules.Options)) *rules.Engine {
	e.t.Helper()
	o := rules.Options{Publisher: e.client, Actuators: e.act, Alarms: e.raised, Registerer: e.reg, MaxAge: -1}
	if mod != nil {
		mod(&o)
	}
	en, err := rules.New(c, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return en
}

// expect waits for a message on topic and returns its payload.
func (e *env) expect(topic string) string {
	e.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-e.msgs:
			if m.topic == topic {
				return m.payload
			}
		case <-deadline:
			e.t.Fatalf("no message on %s within %s", topic, wait)
		}
	}
}

// quiet collects every message for a short while: commands that must not
// have been sent. Sent commands arrive within milliseconds, and the marker
// published last proves everything before it was delivered.
func (e *env) drain() []recv {
	e.t.Helper()
	marker := fmt.Sprintf("marker/%d", time.Now().UnixNano())
	if err := e.client.Publish(context.Background(), marker, 1, false, []byte("x")); err != nil {
		e.t.Fatal(err)
	}
	var out []recv
	deadline := time.After(wait)
	for {
		select {
		case m := <-e.msgs:
			if m.topic == marker {
				return out
			}
			out = append(out, m)
		case <-deadline:
			e.t.Fatalf("marker not seen within %s", wait)
		}
	}
}

var origin0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func mk(typ string, src event.Source, loc event.Location, at time.Time, data map[string]any) event.Event {
	return *eventtest.New(typ, eventtest.Gateway("gw-test", "xjl"), eventtest.Source(src.Kind, src.ID), eventtest.Location(loc),
		eventtest.At(at), eventtest.Data(data))
}

// metric is the value of a gauge, counter (or histogram's count) with the
// given labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return testenv.MetricValue(t, reg, name, labels)
}
