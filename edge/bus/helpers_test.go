package bus_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
)

const wait = 30 * time.Second

// brokerCase is a broker under test.
type brokerCase struct {
	name  string
	start func(t *testing.T) string // returns the URL
}

var brokers = []brokerCase{
	{"embedded", func(t *testing.T) string { u, _ := bustest.Embedded(t); return u }},
	{"mosquitto", func(t *testing.T) string { return bustest.Mosquitto(t).URL() }},
}

// proxy forwards TCP to a broker; Cut drops every connection without an
// MQTT DISCONNECT and Block refuses new ones, like a network failure.
type proxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

func newProxy(t *testing.T, brokerURL string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: brokerURL[len("tcp://"):]}
	go p.serve()
	t.Cleanup(func() { _ = l.Close(); p.Cut() })
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.blocked {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) Block(b bool) {
	p.mu.Lock()
	p.blocked = b
	p.mu.Unlock()
}

// inbox collects messages from a bus.Client.
type inbox struct {
	mu   sync.Mutex
	msgs []*bus.Message
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1)} }

func (b *inbox) add(m *bus.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

// all is the messages so far.
func (b *inbox) all() []*bus.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*bus.Message(nil), b.msgs...)
}

// waitFor polls until cond holds on the messages so far.
func (b *inbox) waitFor(t *testing.T, what string, cond func([]*bus.Message) bool) []*bus.Message {
	t.Helper()
	deadline := time.After(wait)
	for {
		b.mu.Lock()
		msgs := append([]*bus.Message(nil), b.msgs...)
		b.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-b.ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			var topics []string
			for _, m := range msgs {
				topics = append(topics, fmt.Sprintf("%s=%s dup=%v", m.Topic, m.Payload, m.Dup))
			}
			t.Fatalf("timeout waiting for %s; got %d messages: %v", what, len(msgs), topics)
		}
	}
}

func countDistinct(msgs []*bus.Message, prefix string) int {
	seen := map[string]bool{}
	for _, m := range msgs {
		if len(m.Topic) >= len(prefix) && m.Topic[:len(prefix)] == prefix {
			seen[m.Topic+"|"+string(m.Payload)] = true
		}
	}
	return len(seen)
}

// gateway connects a bus.Client and closes it at cleanup.
func gateway(t *testing.T, o bus.ClientOptions) *bus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := bus.Connect(ctx, o)
	if err != nil {
		t.Fatalf("connect %s: %v", o.ClientID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// device is a plain paho client, as a sensor would be.
func device(t *testing.T, url, id, user, pass string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("device %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}
