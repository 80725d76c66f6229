package gateway_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus/bustest"

	"github.com/smartcommunity/warden/edge/testenv"
)

// counterDevice maps every message on test/counter to one event carrying
// the message's n, so events can be matched to messages one to one.
const counterDevice = `  - id: counter-1
    kind: perimeter
    driver: generic_json
    topic: test/counter
    location: {building: "1", zone: north}
    map:
      type: perimeter.intrusion
      data: {n: n}
`

func TestCrashDurabilityEmbedded(t *testing.T) {
	crashDurability(t, "")
}

func TestCrashDurabilityMosquitto(t *testing.T) {
	m := bustest.Mosquitto(t)
	crashDurability(t, m.URL())
}

// crashDurability publishes 5,000 QoS 1 messages, kill -9s the gateway in the
// middle, restarts it, and checks that every message the broker acknowledged
// is present as exactly one event (and no message twice).
func crashDurability(t *testing.T, broker string) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	const total, killAt = 5000, 2500
	s := newSite(t, broker, counterDevice)
	s.start()

	opts := paho.NewClientOptions().AddBroker(s.mqttURL).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).SetWriteTimeout(10 * time.Second)
	pub := paho.NewClient(opts)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	accepted := make([]atomic.Bool, total)
	var acked atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	window := make(chan struct{}, 64) // bounded in-flight publishes
	for n := 0; n < total; n++ {
		window <- struct{}{}
		tok := pub.Publish("test/counter", 1, false, fmt.Sprintf(`{"n":%d,"pad":"%040d"}`, n, n))
		wg.Add(1)
		go func(n int, tok paho.Token) {
			defer wg.Done()
			defer func() { <-window }()
			if tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
				accepted[n].Store(true)
				if acked.Add(1) == killAt {
					killOnce.Do(func() { s.kill9(); close(killed) })
				}
			}
		}(n, tok)
		if !pub.IsConnected() {
			break // the embedded broker died with the gateway
		}
	}
	wg.Wait()
	pub.Disconnect(100)
	select {
	case <-killed:
	default:
		t.Fatalf("only %d of %d publishes were acked before the kill point", acked.Load(), total)
	}
	nAccepted := int(acked.Load())
	t.Logf("broker accepted %d of %d messages; gateway killed after %d", nAccepted, total, killAt)

	s.start()
	var events []apiEvent
	testenv.Eventually(t, 120*time.Second, "every accepted message is an event", func() (bool, string) {
		var err error
		events, err = s.allEvents("perimeter.")
		if err != nil {
			return false, err.Error()
		}
		seen := map[int]bool{}
		for _, e := range events {
			n, _ := e.Data["n"].(float64)
			seen[int(n)] = true
		}
		missing := 0
		for n := range total {
			if accepted[n].Load() && !seen[n] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d accepted messages still missing (%d events)", missing, len(events))
	})
	count := map[int]int{}
	for _, e := range events {
		n, ok := e.Data["n"].(float64)
		if !ok {
			t.Fatalf("event %d has no n: %v", e.Seq, e.Data)
		}
		count[int(n)]++
	}
	dups := 0
	for n, c := range count {
		if c > 1 {
			dups++
			t.Errorf("message n=%d is present as %d events", n, c)
		}
	}
	var lastSeq uint64
	for _, e := range events {
		if e.Seq <= lastSeq {
			t.Fatalf("seq not increasing: %d after %d", e.Seq, lastSeq)
		}
		lastSeq = e.Seq
	}
	t.Logf("%d events for %d accepted messages (%d unacknowledged messages also arrived), %d duplicates",
		len(events), nAccepted, len(count)-nAccepted, dups)
	if err := s.term(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, s.log())
	}
}
