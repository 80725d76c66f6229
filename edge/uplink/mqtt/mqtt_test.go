package mqtt_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
)

// subscriber is the platform side: a durable QoS 1 session that records
// every seq in arrival order.
type subscriber struct {
	mu     sync.Mutex
	seqs   []uint64
	topics map[string]int
	c      paho.Client
}

func subscribe(t *testing.T, url, topic string) *subscriber {
	t.Helper()
	s := &subscriber{topics: map[string]int{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("platform-sub").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(true)
	o.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			var e uplinktest.WireEvent
			if err := json.Unmarshal(m.Payload(), &e); err != nil {
				t.Errorf("bad payload on %s: %v", m.Topic(), err)
				return
			}
			s.mu.Lock()
			s.seqs = append(s.seqs, e.Seq)
			s.topics[m.Topic()]++
			s.mu.Unlock()
		})
	})
	s.c = paho.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	testenv.Until(t, time.Minute, "subscription", func() bool { return s.c.IsConnectionOpen() })
	time.Sleep(200 * time.Millisecond) // let SUBACK land
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *subscriber) distinct() (n int, firstOrder []uint64, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint64]bool{}
	for _, q := range s.seqs {
		if seen[q] {
			dups++
			continue
		}
		seen[q] = true
		firstOrder = append(firstOrder, q)
	}
	return len(seen), firstOrder, dups
}

// The MQTT target advances its cursor only on PUBACK: with the broker
// stopped mid-stream the cursor stands still; after a restart everything
// arrives, first deliveries in seq order.
func TestMQTTBrokerStopMidStream(t *testing.T) {
	brokers := map[string]func(t *testing.T) (url string, stop, start func()){
		"embedded": func(t *testing.T) (string, func(), func()) {
			persist := filepath.Join(t.TempDir(), "broker.db")
			opts := func(o *bus.BrokerOptions) { o.TrustAnonymous = true; o.PersistPath = persist }
			url, b := bustest.Embedded(t, opts)
			addr := url[len("tcp://"):]
			var mu sync.Mutex
			cur := b
			stop := func() { mu.Lock(); defer mu.Unlock(); _ = cur.Close() }
			start := func() {
				mu.Lock()
				defer mu.Unlock()
				var err error
				for i := 0; i < 100; i++ {
					if cur, err = bus.StartBroker(bus.BrokerOptions{Listen: addr, AllowAnonymous: true, TrustAnonymous: true, PersistPath: persist}); err == nil {
						t.Cleanup(func() { _ = cur.Close() })
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				t.Fatalf("restart embedded broker: %v", err)
			}
			return url, stop, start
		},
		"mosquitto": func(t *testing.T) (string, func(), func()) {
			m := bustest.Mosquitto(t)
			return m.URL(), m.Stop, m.Start
		},
	}
	for _, name := range []string{"embedded", "mosquitto"} {
		t.Run(name, func(t *testing.T) {
			url, stopBroker, startBroker := brokers[name](t)
			sub := subscribe(t, url, "warden/gw-test/uplink/#")
			st := storetest.Open(t, store.Options{})
			const first, second = 3000, 2000
			uplinktest.Fill(t, st, first, nil)
			cfg := config.Uplink{
				MQTT:       &config.UplinkMQTT{Broker: url, ClientID: "gw-test-uplink"},
				Batch:      100,
				MinBackoff: config.Duration(50 * time.Millisecond),
				MaxBackoff: config.Duration(300 * time.Millisecond),
			}
			r := uplinktest.Run(t, uplink.Options{Config: cfg, Store: st})
			testenv.Until(t, time.Minute, "some deliveries", func() bool { return r.U.Protect() > 500 })
			stopBroker()
			uplinktest.Fill(t, st, second, nil)
			time.Sleep(300 * time.Millisecond)
			c1 := r.U.Protect()
			time.Sleep(time.Second)
			if c2 := r.U.Protect(); c2 != c1 || c2 > first+second {
				t.Fatalf("cursor moved without a broker: %d -> %d", c1, c2)
			}
			// The client notices the lost connection in its own time (at
			// worst the keep-alive, 30 s); what must hold is that the cursor
			// stays put while the broker is away.
			if s := r.U.Status()[0]; !s.Retrying {
				t.Logf("status 1.3 s after the broker stopped (not yet noticed): %+v", s)
			}
			t.Logf("broker stopped with cursor at %d of %d", c1-1, first+second)
			startBroker()
			waitForOr(t, "every event at the subscriber", func() bool {
				n, _, _ := sub.distinct()
				return n == first+second
			}, func() string { return sub.missing(first + second) })
			testenv.Until(t, time.Minute, "cursor at the end", func() bool { return r.U.Protect() == first+second+1 })
			_, order, dups := sub.distinct()
			uplinktest.AssertInOrder(t, order)
			t.Logf("%s: %d events, %d duplicates (resent after the broker stop)", name, first+second, dups)
		})
	}
}

// missing describes the seqs 1..total not yet seen, as ranges.
func (s *subscriber) missing(total int) string {
	s.mu.Lock()
	seen := map[uint64]bool{}
	for _, q := range s.seqs {
		seen[q] = true
	}
	got := len(s.seqs)
	s.mu.Unlock()
	var out []string
	n := 0
	for q := uint64(1); q <= uint64(total); q++ {
		if seen[q] {
			continue
		}
		start := q
		for q+1 <= uint64(total) && !seen[q+1] {
			q++
		}
		n += int(q - start + 1)
		if len(out) < 20 {
			out = append(out, fmt.Sprintf("%d-%d", start, q))
		}
	}
	return fmt.Sprintf("%d missing of %d (%d deliveries, connected=%v): %v", n, total, got, s.c.IsConnectionOpen(), out)
}

func waitForOr(t testing.TB, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
