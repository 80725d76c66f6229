package bus_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
)

// BenchmarkEmbeddedQoS1: a device publishes pipelined QoS 1 messages, the
// gateway client receives and acks each; ns/op is per message end to end.
func BenchmarkEmbeddedQoS1(b *testing.B) {
	for _, persist := range []bool{false, true} {
		name := "memory"
		if persist {
			name = "persist"
		}
		b.Run(name, func(b *testing.B) {
			url, _ := bustest.Embedded(b, func(o *bus.BrokerOptions) {
				if persist {
					o.PersistPath = filepath.Join(b.TempDir(), "broker.db")
				}
			})
			var got atomic.Int64
			done := make(chan struct{}, 1)
			want := int64(b.N)
			c, err := bus.Connect(context.Background(), bus.ClientOptions{URL: url, ClientID: "bench-gw", Subscriptions: []string{"dev/#"},
				OnMessage: func(m *bus.Message) {
					m.Ack()
					if got.Add(1) == want {
						done <- struct{}{}
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(context.Background())
			pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-dev"))
			if tok := pub.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				b.Fatal(tok.Error())
			}
			defer pub.Disconnect(0)
			payload := make([]byte, 100)
			b.ResetTimer()
			toks := make([]paho.Token, 0, 1000)
			for range b.N {
				toks = append(toks, pub.Publish("dev/bench", 1, false, payload))
				if len(toks) == cap(toks) {
					for _, t := range toks {
						t.Wait()
					}
					toks = toks[:0]
				}
			}
			for _, t := range toks {
				t.Wait()
			}
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				b.Fatalf("received %d of %d", got.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
