package gateway_test

// The fault-injection suite of docs/safety.md: each test breaks one thing
// the way a full disk, a hostile device account or a careless installer
// would, and checks that the valve command still arrives (or the start
// fails clearly) and that nothing acknowledged is lost.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// mountTmpfs mounts a tmpfs of size at dir, or skips: it needs root (CI
// runs as root) and a kernel that allows it.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs (%v: %s); the full-disk tests need it", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// fillDisk writes a file until the filesystem under dir is full and
// returns its path; removing it frees the space.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	_ = exec.Command("dd", "if=/dev/zero", "of="+p, "bs=64k").Run() // runs until ENOSPC
	return p
}

// readyz returns the status code and the failed checks (with the token,
// so their reasons are shown).
func (s *site) readyz() (int, map[string]string) {
	req, _ := http.NewRequest("GET", "http://"+s.apiAddr+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, map[string]string{"http": err.Error()}
	}
	defer resp.Body.Close()
	var body struct {
		Failed map[string]string `json:"failed"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Failed
}

type apiAlarm struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	State    string `json:"state"`
	Unstored bool   `json:"unstored"`
	Source   struct {
		ID string `json:"id"`
	} `json:"source"`
}

func (s *site) openAlarms() ([]apiAlarm, error) {
	var out struct{ Alarms []apiAlarm }
	err := s.apiGet("/api/v1/alarms?state=open", &out)
	return out.Alarms, err
}

// findAlarm is the open alarm of type typ, if any.
func findAlarm(as []apiAlarm, typ string) (apiAlarm, bool) {
	for _, a := range as {
		if a.Type == typ {
			return a, true
		}
	}
	return apiAlarm{}, false
}

// collect subscribes to filter and gathers "topic payload" lines.
type collector struct {
	mu   sync.Mutex
	msgs []string
}

func collect(t *testing.T, c paho.Client, filter string) *collector {
	t.Helper()
	col := &collector{}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		col.mu.Lock()
		col.msgs = append(col.msgs, m.Topic()+" "+string(m.Payload()))
		col.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return col
}

// count is how many messages contain every part.
func (c *collector) count(parts ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.msgs, "\n")
}

// With data_dir on a full disk and the embedded broker (the default), a
// leak still closes the valve, a silent valve still raises valve.fault
// and sounds the siren again, guards see both alarms although nothing can
// be stored, /readyz names the store, and once space is back every
// acknowledged message and both alarms are stored.
func TestLeakWithFullDiskEmbedded(t *testing.T) {
	s := newSite(t, "", gasHome("3s")+counterDevice)
	data := filepath.Join(s.dir, "data")
	mountTmpfs(t, data, "4m")
	s.start()
	// Devices whose publishes are refused get disconnected: listen on a
	// client of its own.
	sub := publisher(t, s.mqttURL)
	cmds := collect(t, sub, "zigbee2mqtt/+/set")
	alarms := collect(t, sub, "warden/gw-test/alarms")
	c := publisher(t, s.mqttURL)

	filler := fillDisk(t, data)
	// Counter events until the store needs a page it cannot get. Tokens
	// are kept: a PUBACKed message must end up stored.
	var acked []paho.Token
	for n := 0; n < 400; n++ {
		acked = append(acked, c.Publish("test/counter", 1, false, fmt.Appendf(nil, `{"n":%d,"pad":"%01000d"}`, n, n)))
		if n%20 == 19 {
			if code, failed := s.readyz(); code == 503 && failed["store"] != "" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually(t, 30*time.Second, "readyz names the failing store", func() (bool, string) {
		code, failed := s.readyz()
		return code == 503 && strings.Contains(failed["store"], "failing"), fmt.Sprint(code, failed)
	})

	publisher(t, s.mqttURL).Publish("zigbee2mqtt/gas-3-2-201", 1, false, `{"gas":true}`)
	eventually(t, 20*time.Second, "close command and siren on a full disk", func() (bool, string) {
		return cmds.count("valve-3-2-201/set", `"OFF"`) >= 1 && cmds.count("siren-3/set", "emergency") >= 1, cmds.String()
	})
	// The valve stays silent: three tries in 3 s, then valve.fault.
	eventually(t, 30*time.Second, "valve.fault and storage alarms shown from memory", func() (bool, string) {
		as, err := s.openAlarms()
		if err != nil {
			return false, err.Error()
		}
		vf, ok1 := findAlarm(as, "valve.fault")
		ss, ok2 := findAlarm(as, "system.storage")
		return ok1 && vf.Unstored && ok2 && ss.Unstored, fmt.Sprintf("%+v", as)
	})
	eventually(t, 10*time.Second, "the siren sounded again for the fault, alarms on MQTT", func() (bool, string) {
		return cmds.count("siren-3/set", "emergency") >= 2 && alarms.count(`"type":"valve.fault"`) >= 1 &&
				alarms.count(`"type":"system.storage"`) >= 1,
			fmt.Sprintf("commands:\n%s\nalarms:\n%s", cmds, alarms)
	})
	if n := s.metric("warden_alarms_unstored"); n < 2 {
		t.Errorf("warden_alarms_unstored = %v, want ≥ 2", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "alarms and events stored once space is back", func() (bool, string) {
		leak, _ := s.allEvents("gas.leak")
		fault, _ := s.allEvents("valve.fault")
		storage, _ := s.allEvents("system.storage")
		as, _ := s.openAlarms()
		vf, ok := findAlarm(as, "valve.fault")
		return len(leak) == 1 && len(fault) == 1 && len(storage) >= 1 && ok && !vf.Unstored,
			fmt.Sprintf("%d leak, %d valve.fault, %d system.storage; alarms %+v", len(leak), len(fault), len(storage), as)
	})
	eventually(t, 30*time.Second, "readyz ok again", func() (bool, string) {
		code, failed := s.readyz()
		return code == 200, fmt.Sprint(code, failed)
	})
	counted, err := s.allEvents("perimeter.")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, e := range counted {
		n, _ := e.Data["n"].(float64)
		seen[int(n)] = true
	}
	lost := 0
	for n, tok := range acked {
		if tok.WaitTimeout(0) && tok.Error() == nil && !seen[n] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged counter messages are not stored", lost)
	}
}

// Finding 1 of the review: only the broker's own file (broker.db) cannot
// be written. The gateway's valve command used to need a record there and
// never arrived. Now commands go out in-process, the gateway's own MQTT
// publishes (alarms) are delivered from memory, system.storage names the
// broker store, and /readyz says mqtt-store.
func TestBrokerStoreFullCommandStillDelivered(t *testing.T) {
	s := newSite(t, "", gasHome("30s"))
	full := filepath.Join(s.dir, "full")
	mountTmpfs(t, full, "1m")
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(full, "broker.db"), filepath.Join(data, "broker.db")); err != nil {
		t.Fatal(err)
	}
	s.start()
	sub := publisher(t, s.mqttURL)
	cmds := collect(t, sub, "zigbee2mqtt/+/set")
	alarms := collect(t, sub, "warden/gw-test/alarms")

	// A persistent subscriber goes away; its queue must be written to
	// broker.db, which cannot grow.
	opts := paho.NewClientOptions().AddBroker(s.mqttURL).SetClientID("offline-app").SetCleanSession(false)
	off := paho.NewClient(opts)
	if tok := off.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := off.Subscribe("app/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	off.Disconnect(100)
	fillDisk(t, full)
	app := publisher(t, s.mqttURL)
	for n := 0; n < 300; n++ {
		app.Publish(fmt.Sprintf("app/%d", n), 1, false, fmt.Appendf(nil, `{"pad":"%01000d"}`, n))
	}
	eventually(t, 30*time.Second, "broker store commits failing", func() (bool, string) {
		n := s.metric("warden_mqtt_broker_persist_errors_total")
		return n >= 1, fmt.Sprint("persist errors ", n)
	})
	publish(t, publisher(t, s.mqttURL), "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
	eventually(t, 20*time.Second, "close command", func() (bool, string) {
		return cmds.count("valve-3-2-201/set", `"OFF"`) >= 1, cmds.String()
	})
	eventually(t, 20*time.Second, "leak alarm and storage alarm on MQTT", func() (bool, string) {
		return alarms.count(`"type":"gas.leak"`) >= 1 && alarms.count(`"type":"system.storage"`) >= 1, alarms.String()
	})
	if code, failed := s.readyz(); code != 503 || !strings.Contains(failed["mqtt-store"], "failing") {
		t.Errorf("readyz %d %v, want 503 naming mqtt-store", code, failed)
	}
	storage, err := s.allEvents("system.storage")
	if err != nil || len(storage) == 0 || !strings.Contains(fmt.Sprint(storage[0].Data["part"]), "mqtt broker store") {
		t.Errorf("system.storage events %+v (%v), want one naming the mqtt broker store", storage, err)
	}
	if n := s.metric("warden_mqtt_broker_persist_errors_total"); n < 1 {
		t.Errorf("warden_mqtt_broker_persist_errors_total = %v", n)
	}
}
