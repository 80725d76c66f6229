package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/testenv"
)

func (s *site) apiPost(path, body string) (int, []byte) { return s.apiDo("POST", path, body) }

// The closed loop: a leak opens one alarm, published on warden/<gw>/alarms;
// the guard acknowledges and resolves it with a note; the lifecycle is in
// the event log for the platform.
func TestGasLeakAlarmLifecycle(t *testing.T) {
	s := newSite(t, "", gasHome("30s"))
	s.start()
	c := publisher(t, s.mqttURL)
	changes := make(chan map[string]any, 20)
	tok := c.Subscribe("warden/gw-test/alarms", 1, func(_ paho.Client, m paho.Message) {
		var v map[string]any
		if json.Unmarshal(m.Payload(), &v) == nil {
			changes <- v
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for range 3 { // repeated reports: one alarm
		publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
		publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":false}`))
	}
	type alarmJSON struct {
		ID, Type, State, Severity string
		Count                     int
	}
	var open struct{ Alarms []alarmJSON }
	testenv.Eventually(t, 20*time.Second, "one open gas alarm", func() (bool, string) {
		if err := s.apiGet("/api/v1/alarms?state=open", &open); err != nil {
			return false, err.Error()
		}
		return len(open.Alarms) == 1 && open.Alarms[0].Type == "gas.leak" && open.Alarms[0].Count == 3, fmt.Sprintf("%+v", open.Alarms)
	})
	select {
	case ch := <-changes:
		if ch["state"] != "open" || ch["type"] != "gas.leak" {
			t.Errorf("first alarm change on MQTT = %v", ch)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no alarm change on warden/gw-test/alarms")
	}
	id := open.Alarms[0].ID
	if code, body := s.apiPost("/api/v1/alarms/"+id+"/ack", `{"note":"on my way"}`); code != 200 {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, body := s.apiPost("/api/v1/alarms/"+id+"/resolve", `{}`); code != 400 {
		t.Errorf("resolve without a note: %d %s, want 400", code, body)
	}
	if code, body := s.apiPost("/api/v1/alarms/"+id+"/resolve", `{"note":"valve closed, window opened, stove knob replaced"}`); code != 200 {
		t.Fatalf("resolve: %d %s", code, body)
	}
	var resolved struct{ Alarms []alarmJSON }
	if err := s.apiGet("/api/v1/alarms?state=resolved", &resolved); err != nil || len(resolved.Alarms) != 1 {
		t.Fatalf("resolved alarms: %+v %v", resolved, err)
	}
	testenv.Eventually(t, 20*time.Second, "the lifecycle is in the event log", func() (bool, string) {
		evs, err := s.allEvents("alarm.")
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		return err == nil && fmt.Sprint(types) == "[alarm.opened alarm.acknowledged alarm.resolved]", fmt.Sprint(types, err)
	})
}
