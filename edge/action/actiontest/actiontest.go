// Package actiontest wires actuators to a real embedded broker, with a
// subscriber standing in for the devices, for other packages' tests.
package actiontest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/action"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

// Bench is a store with its audit log and actuators publishing to an
// embedded broker, where Commands records what the devices receive.
type Bench struct {
	Store    *store.Store
	Audit    *audit.Log
	Act      *action.Actuators
	Commands *Commands
}

// New builds the bench for devs; filters are the command topics the
// stand-in devices subscribe to.
func New(t testing.TB, devs []config.Device, filters ...string) *Bench {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st := storetest.Open(t, store.Options{Logger: log})
	al, err := audit.New(st.DB(), log)
	if err != nil {
		t.Fatal(err)
	}
	act, err := action.NewActuators(devs, drivers.Default, al, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := bustest.Embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmds := &Commands{ch: make(chan struct{}, 1)}
	sub, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "actuator-bridge", Logger: log, Subscriptions: filters,
		OnMessage: func(m *bus.Message) { cmds.add(m.Topic + " " + string(m.Payload)); m.Ack() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })
	pub, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "warden-gw", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	act.SetPublisher(pub)
	return &Bench{Store: st, Audit: al, Act: act, Commands: cmds}
}

// Commands are "topic payload" lines in the order the devices got them.
type Commands struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func (c *Commands) add(s string) {
	c.mu.Lock()
	c.got = append(c.got, s)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

// List is every command so far.
func (c *Commands) List() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// WaitFor waits up to 30 s for n commands and returns them all.
func (c *Commands) WaitFor(t testing.TB, n int) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if got := c.List(); len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-deadline:
			got := c.List()
			t.Fatalf("saw %d commands, want %d: %v", len(got), n, got)
		}
	}
}
