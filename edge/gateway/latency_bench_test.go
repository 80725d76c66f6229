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
// the valve's close command reaching a subscriber, under background
// traffic of 2,000 msg/s from 1,000 devices; beside it, the bare mosquitto
// echo round trip (publish → echo client → publish back) under the same
// load. The gateway runs as its own process, as in production:
//
//   - gateway-mosquitto: through an external mosquitto (commands on their
//     own MQTT connection);
//   - gateway-embedded: the default embedded broker (commands published
//     in-process);
//   - gateway-embedded-takeover-storm: while a device account tries to take
//     the gateway's client ids every 100 ms;
//   - gateway-embedded-disk-full: data_dir on a full tmpfs (root only): every
//     device publish is refused and its client disconnected, so each sample
//     is a fresh connection and the background devices keep reconnecting.
//
// gw-cores is the gateway process's CPU over the run.
//
//	go test -run '^$' -bench BenchmarkLeakToValve -benchtime 500x ./edge/gateway
func BenchmarkLeakToValve(b *testing.B) {
	const devices, rate = 1000, 2000
	var devs strings.Builder
	devs.WriteString(`  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-1", valve: valve-1}
  - {id: valve-1, kind: gas_valve, driver: zigbee2mqtt, topic: "zigbee2mqtt/valve-1", confirm_timeout: 5m}
`)
	for i := range devices {
		fmt.Fprintf(&devs, "  - {id: band-%d, kind: wristband, driver: zigbee2mqtt, topic: \"bg/band-%d\"}\n", i, i)
	}
	leak := func(int) []byte { return []byte(`{"gas":true}`) }
	clear := func(c paho.Client) { c.Publish("zigbee2mqtt/gas-1", 1, false, `{"gas":false}`).Wait() }
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
	b.Run("gateway-mosquitto", func(b *testing.B) {
		m := bustest.Mosquitto(b)
		s := benchSite(b, m.URL(), devs.String())
		stop := background(b, m.URL(), devices, rate)
		defer stop()
		defer gatewayCores(b, s)()
		// Alternate leak and clear so every other message is a new leak;
		// only the leaks are timed.
		measure(b, m.URL(), "zigbee2mqtt/gas-1", "zigbee2mqtt/valve-1/set", leak, clear)
	})
	b.Run("gateway-embedded", func(b *testing.B) {
		s := benchSite(b, "", devs.String())
		stop := background(b, s.mqttURL, devices, rate)
		defer stop()
		defer gatewayCores(b, s)()
		measure(b, s.mqttURL, "zigbee2mqtt/gas-1", "zigbee2mqtt/valve-1/set", leak, clear)
	})
	b.Run("gateway-embedded-takeover-storm", func(b *testing.B) {
		s := benchSite(b, "", devs.String())
		stop := background(b, s.mqttURL, devices, rate)
		defer stop()
		defer takeoverStorm(b, s.mqttURL, "warden-gw-test", "warden-gw-test-cmd")()
		defer gatewayCores(b, s)()
		measure(b, s.mqttURL, "zigbee2mqtt/gas-1", "zigbee2mqtt/valve-1/set", leak, clear)
	})
	b.Run("gateway-embedded-disk-full", func(b *testing.B) {
		s := newSite(b, "", devs.String())
		s.bin = plainBinary(b)
		data := filepath.Join(s.dir, "data")
		mountTmpfs(b, data, "8m")
		s.start()
		stop := background(b, s.mqttURL, devices, rate)
		defer stop()
		fillDisk(b, data)
		// Dead letters (an unknown device, 1 KB each) until commits fail:
		// every sample then runs on a full disk.
		deadline := time.Now().Add(30 * time.Second)
		for n := 0; s.metric("warden_mqtt_inline_refused_total") < 1; n++ {
			if time.Now().After(deadline) {
				b.Fatal("device publishes are not refused on the full disk")
			}
			c := connect(b, s.mqttURL, "filler")
			for range 50 {
				c.Publish("zigbee2mqtt/nobody", 0, false, fmt.Sprintf(`{"pad":"%01000d"}`, n))
			}
			time.Sleep(100 * time.Millisecond)
		}
		defer gatewayCores(b, s)()
		measureFresh(b, s.mqttURL, "zigbee2mqtt/gas-1", "zigbee2mqtt/valve-1/set", `{"gas":true}`, `{"gas":false}`)
	})
}

// benchSite starts a gateway from the plain (not race) binary.
func benchSite(b *testing.B, broker, devs string) *site {
	s := newSite(b, broker, devs)
	s.bin = plainBinary(b)
	if g := os.Getenv("BENCH_GATEWAY_GOGC"); g != "" {
		s.env = []string{"GOGC=" + g}
	}
	s.start()
	return s
}

// gatewayCores reports the gateway's CPU (cores) from now until the
// returned func runs.
func gatewayCores(b *testing.B, s *site) func() {
	pid := s.cmd.Process.Pid
	cpu0, t0 := procCPU(b, pid), time.Now()
	return func() { b.ReportMetric((procCPU(b, pid)-cpu0)/time.Since(t0).Seconds(), "gw-cores") }
}

// procCPU is a process's user+system CPU seconds (clock ticks of 1/100 s).
func procCPU(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st)[strings.LastIndexByte(string(st), ')')+2:])
	var u, sys float64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &sys)
	return (u + sys) / 100
}

// takeoverStorm connects with the given client ids every 100 ms until the
// returned func runs.
func takeoverStorm(b *testing.B, url string, ids ...string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, id := range ids {
				c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false))
				if t := c.Connect(); t.WaitTimeout(5*time.Second) && t.Error() == nil {
					c.Disconnect(0)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// measureFresh is measure for a broker that disconnects every publisher
// (full disk): each sample publishes the leak at QoS 0 from a new
// connection, and the clear from another.
func measureFresh(b *testing.B, url, pubTopic, subTopic, leak, clear string) {
	l := newLatencies(b, url, subTopic)
	once := func(payload string) time.Time {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("lat-pub-%d", time.Now().UnixNano())).SetAutoReconnect(false))
		if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
		defer c.Disconnect(0)
		start := time.Now()
		c.Publish(pubTopic, 0, false, payload).Wait()
		return start
	}
	b.ResetTimer()
	for i := range b.N {
		once(clear)
		time.Sleep(5 * time.Millisecond)
		l.drain()
		start := once(leak)
		l.wait(start, i)
	}
	b.StopTimer()
	l.report()
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
	l := newLatencies(b, url, subTopic)
	pub := connect(b, url, "lat-pub")
	b.ResetTimer()
	for i := range b.N {
		for _, f := range between {
			f(pub)
		}
		start := time.Now()
		pub.Publish(pubTopic, 1, false, payload(i))
		l.wait(start, i)
	}
	b.StopTimer()
	l.report()
}

// latencies times messages arriving on a subscription.
type latencies struct {
	b     *testing.B
	topic string
	got   chan time.Time
	lat   []time.Duration
}

func newLatencies(b *testing.B, url, topic string) *latencies {
	l := &latencies{b: b, topic: topic, got: make(chan time.Time, 16), lat: make([]time.Duration, 0, b.N)}
	sub := connect(b, url, "lat-sub")
	sub.Subscribe(topic, 1, func(paho.Client, paho.Message) { l.got <- time.Now() }).Wait()
	return l
}

// drain drops messages that arrived between samples.
func (l *latencies) drain() {
	for len(l.got) > 0 {
		<-l.got
	}
}

// wait records the time from start to the next message (sample i).
func (l *latencies) wait(start time.Time, i int) {
	select {
	case at := <-l.got:
		l.lat = append(l.lat, at.Sub(start))
	case <-time.After(10 * time.Second):
		l.b.Fatalf("no message on %s within 10s (sample %d)", l.topic, i)
	}
}

func (l *latencies) report() {
	lat := l.lat
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	l.b.ReportMetric(p(0.50), "p50-ms")
	l.b.ReportMetric(p(0.99), "p99-ms")
	l.b.ReportMetric(0, "ns/op")
}
