package gateway_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/bus/bustest"

	"github.com/smartcommunity/warden/edge/testenv"
)

// gasHome is one flat: a detector, its valve and the building's siren.
func gasHome(confirm string) string {
	return fmt.Sprintf(`  - {id: gas-3-2-201, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-3-2-201",
     valve: valve-3-2-201, location: {building: "3", unit: "2", room: "201"}}
  - {id: valve-3-2-201, kind: gas_valve, driver: zigbee2mqtt, topic: "zigbee2mqtt/valve-3-2-201",
     confirm_timeout: %s, location: {building: "3", unit: "2", room: "201"}}
  - {id: siren-3, kind: siren, driver: zigbee2mqtt, topic: "zigbee2mqtt/siren-3", location: {building: "3"}}
`, confirm)
}

// commands subscribes to every command topic and collects what arrives.
func commands(t *testing.T, c paho.Client) chan paho.Message {
	t.Helper()
	ch := make(chan paho.Message, 100)
	tok := c.Subscribe("zigbee2mqtt/+/set", 1, func(_ paho.Client, m paho.Message) { ch <- m })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return ch
}

func expectCommand(t *testing.T, ch chan paho.Message, topic, contains string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Topic() == topic && strings.Contains(string(m.Payload()), contains) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s command containing %q", topic, contains)
		}
	}
}

func TestGasLeakClosesValveAndConfirms(t *testing.T) {
	s := newSite(t, "", gasHome("5s"))
	s.start()
	c := publisher(t, s.mqttURL)
	cmds := commands(t, c)

	publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true,"battery":90,"linkquality":120}`))
	expectCommand(t, cmds, "zigbee2mqtt/valve-3-2-201/set", `"OFF"`)
	expectCommand(t, cmds, "zigbee2mqtt/siren-3/set", `"emergency"`)
	// The valve reports closed: no fault, and valve.closed is recorded.
	publish(t, c, "zigbee2mqtt/valve-3-2-201", []byte(`{"state":"OFF"}`))
	testenv.Eventually(t, 20*time.Second, "gas.leak and valve.closed recorded", func() (bool, string) {
		leak, _ := s.allEvents("gas.leak")
		closed, _ := s.allEvents("valve.closed")
		return len(leak) == 1 && len(closed) == 1, fmt.Sprintf("%d gas.leak, %d valve.closed", len(leak), len(closed))
	})
	time.Sleep(6 * time.Second) // past confirm_timeout
	if f, _ := s.allEvents("valve.fault"); len(f) != 0 {
		t.Fatalf("valve.fault raised although the valve reported closed: %+v", f)
	}
}

func TestSilentValveRaisesFaultAfterRetries(t *testing.T) {
	s := newSite(t, "", gasHome("2s"))
	s.start()
	c := publisher(t, s.mqttURL)
	cmds := commands(t, c)
	publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":"True"}`)) // Tuya sends a string
	closes := 0
	deadline := time.After(20 * time.Second)
	for closes < 3 {
		select {
		case m := <-cmds:
			if m.Topic() == "zigbee2mqtt/valve-3-2-201/set" {
				closes++
			}
		case <-deadline:
			t.Fatalf("%d close commands, want 3 tries", closes)
		}
	}
	testenv.Eventually(t, 20*time.Second, "valve.fault raised", func() (bool, string) {
		f, _ := s.allEvents("valve.fault")
		if len(f) != 1 {
			return false, fmt.Sprintf("%d valve.fault events", len(f))
		}
		return f[0].Severity == "critical" && strings.Contains(fmt.Sprint(f[0].Data["reason"]), "3 close commands"), fmt.Sprintf("%+v", f[0])
	})
	select {
	case m := <-cmds:
		if m.Topic() == "zigbee2mqtt/valve-3-2-201/set" {
			t.Errorf("a 4th close command was sent: %s", m.Payload())
		}
	case <-time.After(time.Second):
	}
}

// The valve closes even when the store cannot write (disk full), and the
// leak event is committed once space is back: nothing is lost.
func TestGasLeakWithFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	// An external broker: the embedded one keeps its sessions in the data
	// dir too, and on a full disk it rightly stops acknowledging publishes.
	m := bustest.Mosquitto(t)
	s := newSite(t, m.URL(), gasHome("5s")+counterDevice)
	data := filepath.Join(s.dir, "data")
	os.MkdirAll(data, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs (%v: %s); the full-disk test needs it", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })
	s.start()
	c := publisher(t, s.mqttURL)
	cmds := commands(t, c)

	filler := filepath.Join(data, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // runs until ENOSPC
	// Enough events to need new pages: the store must hit ENOSPC.
	const fill = 300
	for n := range fill {
		publish(t, c, "test/counter", fmt.Appendf(nil, `{"n":%d,"pad":"%01000d"}`, n, n))
	}
	publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
	expectCommand(t, cmds, "zigbee2mqtt/valve-3-2-201/set", `"OFF"`)
	testenv.Eventually(t, 20*time.Second, "readyz reports the store failing", func() (bool, string) {
		req, _ := http.NewRequest("GET", "http://"+s.apiAddr+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 503, resp.Status
	})
	if n := s.metric("warden_store_errors_total"); n < 1 {
		t.Errorf("warden_store_errors_total = %v, want ≥ 1", n)
	}
	os.Remove(filler)
	testenv.Eventually(t, 60*time.Second, "every event is committed once space is back", func() (bool, string) {
		leak, err := s.allEvents("gas.leak")
		counted, err2 := s.allEvents("perimeter.")
		return len(leak) == 1 && len(counted) == fill, fmt.Sprintf("%d gas.leak, %d of %d counter events (err %v %v)", len(leak), len(counted), fill, err, err2)
	})
}
