package gateway_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gateway"
)

// BenchmarkIngest measures device messages per second that become committed
// events, against the bare broker round trip in the same run:
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 20000x ./edge/gateway
//
// mosquitto-pubsub is the baseline: one QoS 1 publisher, one QoS 1
// subscriber, nothing else. The gateway cases use the same publisher and
// count a message done when its event is committed (fsynced) in bbolt.
func BenchmarkIngest(b *testing.B) {
	b.Run("mosquitto-pubsub", func(b *testing.B) {
		m := bustest.Mosquitto(b)
		var got atomic.Int64
		sub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("bench-sub"))
		if t := sub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
		defer sub.Disconnect(50)
		sub.Subscribe("test/counter", 1, func(paho.Client, paho.Message) { got.Add(1) }).Wait()
		runIngest(b, m.URL(), func() uint64 { return uint64(got.Load()) })
	})
	for _, broker := range []string{"mosquitto", "embedded"} {
		b.Run("gateway-"+broker, func(b *testing.B) {
			url := ""
			if broker == "mosquitto" {
				url = bustest.Mosquitto(b).URL()
			}
			g, devURL := inProcessGateway(b, url)
			runIngest(b, devURL, g.LastSeq)
		})
	}
}

// publishers is how many device connections publish at once: a compound
// has hundreds of devices, each with its own connection.
const publishers = 32

func runIngest(b *testing.B, url string, done func() uint64) {
	pubs := make([]paho.Client, publishers)
	for i := range pubs {
		pubs[i] = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-pub-%d-%d", i, time.Now().UnixNano())))
		if t := pubs[i].Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
		defer pubs[i].Disconnect(50)
	}
	start0 := done()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, pub := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			window := make(chan paho.Token, 200)
			go func() {
				for n := i; n < b.N; n += publishers {
					window <- pub.Publish("test/counter", 1, false, fmt.Sprintf(`{"n":%d,"pad":"%060d"}`, n, n))
				}
				close(window)
			}()
			for t := range window {
				t.Wait()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for done()-start0 < uint64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if got := done() - start0; got < uint64(b.N) {
		b.Fatalf("only %d of %d messages arrived", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func inProcessGateway(b *testing.B, broker string) (*gateway.Gateway, string) {
	dir := b.TempDir()
	mqtt := ""
	devURL := broker
	if broker == "" {
		port := bustest.FreePort(b)
		mqtt = fmt.Sprintf(`{embedded: {listen: "127.0.0.1:%d", allow_anonymous: true}}`, port)
		devURL = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	} else {
		mqtt = fmt.Sprintf(`{broker: %q}`, broker)
	}
	yaml := fmt.Sprintf("gateway: {id: gw-bench, data_dir: %q}\nlog: {level: error}\nmqtt: %s\napi: {listen: \"127.0.0.1:0\"}\ndevices:\n%s",
		filepath.Join(dir, "data"), mqtt, counterDevice)
	cfg, err := config.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	g, _ := runInProcess(b, cfg)
	return g, devURL
}
