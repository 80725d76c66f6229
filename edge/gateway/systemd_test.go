package gateway_test

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The daemon tells systemd it is ready, pings the watchdog while healthy
// and says it is stopping on SIGTERM.
func TestSdNotifyReadyWatchdogStopping(t *testing.T) {
	s := newSite(t, "", counterDevice)
	sock := filepath.Join(s.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	s.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}
	s.start()
	want := func(what string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, what) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q on NOTIFY_SOCKET", what)
			}
		}
	}
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	if err := s.term(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	want("STOPPING=1")
}

// Every committed event is published on warden/<gw>/events/<type>.
func TestEventsArePublishedOnTheirTopic(t *testing.T) {
	s := newSite(t, "", counterDevice)
	s.start()
	c := publisher(t, s.mqttURL)
	got := make(chan paho.Message, 10)
	tok := c.Subscribe("warden/gw-test/events/#", 1, func(_ paho.Client, m paho.Message) { got <- m })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	publish(t, c, "test/counter", []byte(`{"n":42}`))
	select {
	case m := <-got:
		if m.Topic() != "warden/gw-test/events/perimeter.intrusion" || m.Qos() != 1 {
			t.Fatalf("topic %s qos %d", m.Topic(), m.Qos())
		}
		var e apiEvent
		if err := json.Unmarshal(m.Payload(), &e); err != nil || fmt.Sprint(e.Data["n"]) != "42" || e.Seq == 0 || e.ID == "" {
			t.Fatalf("payload %s (err %v)", m.Payload(), err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event on warden/gw-test/events/#")
	}
	if v := s.metric("warden_events_total", `type="perimeter.intrusion"`); v != 1 {
		t.Errorf("warden_events_total{type=perimeter.intrusion} = %v, want 1", v)
	}
}
