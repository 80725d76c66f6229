package bus_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/testenv"
)

// commits stands in for the event store: the test decides when (and
// whether) each handed-over message is committed.
type commits struct {
	mu   sync.Mutex
	msgs []bus.InlineMessage
	done []func(error)
	ch   chan struct{}
}

func newCommits() *commits { return &commits{ch: make(chan struct{}, 100)} }

func (c *commits) handle(m bus.InlineMessage, done func(error)) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.done = append(c.done, done)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *commits) waitN(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		got := len(c.msgs)
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("handler got %d messages, want %d", got, n)
		}
	}
}

func (c *commits) finish(i int, err error) {
	c.mu.Lock()
	d := c.done[i]
	c.mu.Unlock()
	d(err)
}

func completes(tok paho.Token, within time.Duration) bool {
	return tok.WaitTimeout(within) && tok.Error() == nil
}

func TestInlineAcksAfterCommitInOrder(t *testing.T) {
	c := newCommits()
	url, _ := bustestEmbedded(t, func(o *bus.BrokerOptions) {
		o.Inline = &bus.Inline{Filters: []string{"dev/#"}, Handle: c.handle}
	})
	// Another subscriber still gets device messages, after their commit.
	other := newInbox()
	gateway(t, bus.ClientOptions{URL: url, ClientID: "other", Subscriptions: []string{"dev/#", "plain/#"},
		OnMessage: func(m *bus.Message) { other.add(m); m.Ack() }})
	d := device(t, url, "dev-1", "", "")

	var toks []paho.Token
	for i := range 3 {
		toks = append(toks, d.Publish("dev/a", 1, false, fmt.Sprint(i)))
	}
	c.waitN(t, 3)
	for i, m := range c.msgs {
		if m.Topic != "dev/a" || string(m.Payload) != fmt.Sprint(i) || m.ClientID != "dev-1" || m.QoS != 1 || m.Dup {
			t.Fatalf("message %d handed over as %+v", i, m)
		}
	}
	if completes(toks[0], 300*time.Millisecond) {
		t.Fatal("PUBACK before the commit")
	}
	// The second commits first: its PUBACK still waits for the first.
	c.finish(1, nil)
	if completes(toks[1], 300*time.Millisecond) {
		t.Fatal("second PUBACK overtook the first")
	}
	c.finish(0, nil)
	c.finish(2, nil)
	for i, tok := range toks {
		if !completes(tok, wait) {
			t.Fatalf("message %d: no PUBACK after commit: %v", i, tok.Error())
		}
	}
	msgs := other.waitFor(t, "the other subscriber gets the messages", func(m []*bus.Message) bool { return len(m) >= 3 })
	for i, m := range msgs[:3] {
		if string(m.Payload) != fmt.Sprint(i) {
			t.Errorf("other subscriber: message %d is %q", i, m.Payload)
		}
	}
	// Topics outside the filters pass the hook untouched.
	publish(t, d, "plain/x", 1, false, "p")
	other.waitFor(t, "plain message", func(m []*bus.Message) bool { return countDistinct(m, "plain/") == 1 })
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 3 {
		t.Errorf("handler saw %d messages, want 3 (plain/x is not inline)", len(c.msgs))
	}
}

func TestInlineRefusalDisconnectsAndDeviceResends(t *testing.T) {
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	var seen []bus.InlineMessage
	url, _ := bustestEmbedded(t, func(o *bus.BrokerOptions) {
		o.Registerer = reg
		o.Inline = &bus.Inline{Filters: []string{"dev/+"}, Handle: func(m bus.InlineMessage, done func(error)) {
			mu.Lock()
			seen = append(seen, m)
			first := len(seen) == 1
			mu.Unlock()
			if first {
				done(errors.New("disk full"))
				return
			}
			go done(nil) // from another goroutine, as the store's committer does
		}}
	})
	lost := make(chan struct{}, 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID("dev-r").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectionLostHandler(func(paho.Client, error) {
			select {
			case lost <- struct{}{}:
			default:
			}
		})
	d := paho.NewClient(o)
	if tok := d.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.Disconnect(100) })
	d.Publish("dev/gas", 1, false, `{"gas":true}`)
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("a refused publish did not disconnect the device")
	}
	// paho completes the first token when it resends after the reconnect, so
	// watch the handler instead.
	deadline := time.Now().Add(wait)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the device did not resend the refused publish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tok := d.Publish("dev/gas", 1, false, `{"gas":false}`); !completes(tok, wait) {
		t.Fatalf("publish after the reconnect not acknowledged: %v", tok.Error())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || !seen[1].Dup || string(seen[1].Payload) != `{"gas":true}` {
		t.Fatalf("handler saw %+v, want the refused message twice (the second with DUP), then the next", seen)
	}
	if n := testenv.CounterValue(t, reg, "warden_mqtt_inline_refused_total"); n != 1 {
		t.Errorf("warden_mqtt_inline_refused_total = %v, want 1", n)
	}
}

func TestMatchFilter(t *testing.T) {
	for _, c := range []struct {
		f, topic string
		want     bool
	}{
		{"zigbee2mqtt/#", "zigbee2mqtt/gas-1", true},
		{"zigbee2mqtt/#", "zigbee2mqtt", true},
		{"zigbee2mqtt/#", "zigbee2mqtt/a/b/set", true},
		{"zigbee2mqtt/#", "zigbee2mqttx/a", false},
		{"test/counter", "test/counter", true},
		{"test/counter", "test/counter/x", false},
		{"test/counter", "test", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"a/+", "a/b/c", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"lpr", "lpr", true},
	} {
		if got := bus.MatchFilter(c.f, c.topic); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.f, c.topic, got, c.want)
		}
	}
}
