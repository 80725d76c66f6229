package gateway_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus/bustest"
)

// BenchmarkLeakToValve measures the time from a gas detector's message to
// the valve's close command reaching a subscriber, through mosquitto, under
// background traffic of 2,000 msg/s from 1,000 devices; beside it, the bare
// mosquitto echo round trip (publish → echo client → publish back) under
// the same load:
//
//	go test -run '^$' -bench BenchmarkLeakToValve -benchtime 400x ./edge/gateway
func BenchmarkLeakToValve(b *testing.B) {
	const devices, rate = 1000, 2000
	b.Run("mosquitto-echo", func(b *testing.B) {
		m := bustest.Mosquitto(b)
		echo := connect(b, m.URL(), "echo")
		echo.Subscribe("bench/ping", 1, func(c paho.Client, msg paho.Message) {
			c.Publish("bench/pong", 1, false, msg.Payload())
		}).Wait()
		stop := background(b, m.URL(), devices, rate)
		defer stop()
		// The same shape as the gateway case: one acknowledged publish
		// between samples.
		measure(b, m.URL(), "bench/ping", "bench/pong", func(i int) []byte { return fmt.Appendf(nil, `{"i":%d}`, i) },
			func(c paho.Client) { c.Publish("bench/idle", 1, false, `{}`).Wait() })
	})
	b.Run("gateway", func(b *testing.B) {
		m := bustest.Mosquitto(b)
		var devs strings.Builder
		devs.WriteString(`  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-1", valve: valve-1}
  - {id: valve-1, kind: gas_valve, driver: zigbee2mqtt, topic: "zigbee2mqtt/valve-1", confirm_timeout: 5m}
`)
		for i := range devices {
			fmt.Fprintf(&devs, "  - {id: band-%d, kind: wristband, driver: zigbee2mqtt, topic: \"bg/band-%d\"}\n", i, i)
		}
		// The gateway runs as its own process, as in production, so the
		// load generators' garbage is not collected on its time.
		s := newSite(b, m.URL(), devs.String())
		s.bin = plainBinary(b)
		if g := os.Getenv("BENCH_GATEWAY_GOGC"); g != "" {
			s.env = []string{"GOGC=" + g}
		}
		s.start()
		stop := background(b, m.URL(), devices, rate)
		defer stop()
		// Alternate leak and clear so every other message is a new leak;
		// only the leaks are timed.
		measure(b, m.URL(), "zigbee2mqtt/gas-1", "zigbee2mqtt/valve-1/set", func(i int) []byte { return []byte(`{"gas":true}`) },
			func(c paho.Client) { c.Publish("zigbee2mqtt/gas-1", 1, false, `{"gas":false}`).Wait() })
	})
}

// plainBinary builds bin/warden without the race detector, for timings.
func plainBinary(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "warden")
	if o, err := exec.Command("go", "build", "-o", out, "../../cmd/warden").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, o)
	}
	return out
}

func connect(b *testing.B, url, id string) paho.Client {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("%s-%d", id, time.Now().UnixNano())))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal(t.Error())
	}
	b.Cleanup(func() { c.Disconnect(50) })
	return c
}

// background publishes heart-rate reports round-robin over the devices at
// rate msg/s from 10 connections until stopped.
func background(b *testing.B, url string, devices, rate int) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const conns = 10
	for k := range conns {
		c := connect(b, url, fmt.Sprintf("bg%d", k))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * conns / time.Duration(rate))
			defer tick.Stop()
			for n := k; ; n += conns {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				c.Publish(fmt.Sprintf("bg/band-%d", n%devices), 1, false, fmt.Sprintf(`{"heart_rate":%d,"battery":90}`, 60+n%30))
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // let the load settle
	return func() { cancel(); wg.Wait() }
}

func measure(b *testing.B, url, pubTopic, subTopic string, payload func(int) []byte, between ...func(paho.Client)) {
	got := make(chan time.Time, 16)
	sub := connect(b, url, "lat-sub")
	sub.Subscribe(subTopic, 1, func(paho.Client, paho.Message) { got <- time.Now() }).Wait()
	pub := connect(b, url, "lat-pub")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		for _, f := range between {
			f(pub)
		}
		start := time.Now()
		pub.Publish(pubTopic, 1, false, payload(i))
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("no message on %s within 10s (sample %d)", subTopic, i)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
