package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/bus"
)

// TestStatus: "online" retained on connect, "offline" on Close and as the
// last will when the connection dies without DISCONNECT.
func TestStatus(t *testing.T) {
	for _, bc := range brokers {
		t.Run(bc.name, func(t *testing.T) {
			url := bc.start(t)
			px := newProxy(t, url)
			watch := newInbox()
			gateway(t, bus.ClientOptions{URL: url, ClientID: "watcher", Subscriptions: []string{"warden/+/status"},
				OnMessage: func(m *bus.Message) { m.Ack(); watch.add(m) }})
			last := func(want string) func([]*bus.Message) bool {
				return func(ms []*bus.Message) bool {
					return len(ms) > 0 && string(ms[len(ms)-1].Payload) == want
				}
			}
			opts := bus.ClientOptions{URL: px.URL(), ClientID: "gw-1", StatusTopic: "warden/gw-1/status"}
			ctx := context.Background()
			gw, err := bus.Connect(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			watch.waitFor(t, "online", last("online"))
			if !gw.Connected() {
				t.Error("Connected() = false after connect")
			}
			if err := gw.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := gw.Close(ctx); err != nil {
				t.Fatalf("second close: %v", err)
			}
			watch.waitFor(t, "offline after Close", last("offline"))

			// retained: a new subscriber sees the last state
			late := newInbox()
			gateway(t, bus.ClientOptions{URL: url, ClientID: "late", Subscriptions: []string{"warden/gw-1/status"},
				OnMessage: func(m *bus.Message) { m.Ack(); late.add(m) }})
			ms := late.waitFor(t, "retained offline", last("offline"))
			if !ms[len(ms)-1].Retained {
				t.Error("status not retained")
			}

			gw = gateway(t, opts)
			watch.waitFor(t, "online again", last("online"))
			px.Block(true)
			px.Cut() // no DISCONNECT: the broker sends the will
			watch.waitFor(t, "offline will", last("offline"))
			px.Block(false)
			watch.waitFor(t, "online after reconnect", last("online"))
			_ = gw
		})
	}
}

// TestRedeliverUnacked: messages not acked before the connection drops are
// delivered again, with Dup set, after the client reconnects by itself.
func TestRedeliverUnacked(t *testing.T) {
	for _, bc := range brokers {
		t.Run(bc.name, func(t *testing.T) {
			url := bc.start(t)
			px := newProxy(t, url)
			in := newInbox()
			ackNow := make(chan bool, 1)
			ackNow <- false
			gateway(t, bus.ClientOptions{URL: px.URL(), ClientID: "gw-redeliver", Subscriptions: []string{"dev/#"},
				OnMessage: func(m *bus.Message) {
					ack := <-ackNow
					ackNow <- ack
					if ack {
						m.Ack()
					}
					in.add(m)
				}})
			dev := device(t, url, "dev-1", "", "")
			for i := range 5 {
				publish(t, dev, "dev/a", 1, false, fmt.Sprint(i))
			}
			in.waitFor(t, "5 first deliveries", func(ms []*bus.Message) bool { return len(ms) >= 5 })
			<-ackNow
			ackNow <- true
			px.Cut()
			ms := in.waitFor(t, "5 redeliveries", func(ms []*bus.Message) bool { return len(ms) >= 10 })
			for i, m := range ms[5:10] {
				if !m.Dup || string(m.Payload) != fmt.Sprint(i) {
					t.Errorf("redelivery %d: payload %q dup %v, want %d dup true", i, m.Payload, m.Dup, i)
				}
			}
			// acked now: after another drop only new messages arrive
			time.Sleep(200 * time.Millisecond) // let the PUBACKs leave before cutting
			px.Cut()
			publish(t, dev, "dev/a", 1, false, "marker")
			ms = in.waitFor(t, "marker", func(ms []*bus.Message) bool {
				return len(ms) > 10 && string(ms[len(ms)-1].Payload) == "marker"
			})
			if len(ms) != 11 {
				t.Errorf("acked messages redelivered again: %d messages", len(ms))
			}
		})
	}
}

// TestOfflineQueue: QoS 1 messages published while the gateway is away are
// delivered when it comes back with the same client id.
func TestOfflineQueue(t *testing.T) {
	for _, bc := range brokers {
		t.Run(bc.name, func(t *testing.T) {
			url := bc.start(t)
			opts := bus.ClientOptions{URL: url, ClientID: "gw-offline", Subscriptions: []string{"dev/#"}}
			ctx := context.Background()
			c, err := bus.Connect(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			dev := device(t, url, "dev-2", "", "")
			for i := range 20 {
				publish(t, dev, fmt.Sprintf("dev/%d", i), 1, false, "x")
			}
			// mochi sends the PUBACK before it hands a message to the
			// subscribers, on the same connection's goroutine: once one
			// more publish is acknowledged, dev/19 is queued for the
			// offline session. Without this it can reach the reconnected
			// gateway live, in the middle of the queue's resend.
			publish(t, dev, "sync/queued", 1, false, "x")
			in := newInbox()
			opts.OnMessage = func(m *bus.Message) { m.Ack(); in.add(m) }
			gateway(t, opts)
			ms := in.waitFor(t, "20 queued messages", func(ms []*bus.Message) bool { return countDistinct(ms, "dev/") >= 20 })
			for i, m := range ms[:20] {
				if m.Topic != fmt.Sprintf("dev/%d", i) {
					t.Errorf("message %d: topic %s (order lost)", i, m.Topic)
				}
			}
		})
	}
}

// TestPublishNoWait: fire-and-forget commands reach a subscriber.
func TestPublishNoWait(t *testing.T) {
	url, _ := bustestEmbedded(t)
	in := newInbox()
	gateway(t, bus.ClientOptions{URL: url, ClientID: "valve", Subscriptions: []string{"z/valve/set"},
		OnMessage: func(m *bus.Message) { m.Ack(); in.add(m) }})
	gw := gateway(t, bus.ClientOptions{URL: url, ClientID: "gw"})
	gw.PublishNoWait("z/valve/set", 1, false, []byte(`{"state":"OFF"}`))
	in.waitFor(t, "command", func(ms []*bus.Message) bool { return len(ms) == 1 && strings.Contains(string(ms[0].Payload), "OFF") })
}
