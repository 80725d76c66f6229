package gateway_test

// The fault-injection suite of docs/safety.md: each test breaks one thing
// the way a full disk, a hostile device account or a careless installer
// would, and checks that the valve command still arrives (or the start
// fails clearly) and that nothing acknowledged is lost.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
)

// mountTmpfs mounts a tmpfs of size at dir, or skips: it needs root (CI
// runs as root) and a kernel that allows it.
func mountTmpfs(t testing.TB, dir, size string) {
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
func fillDisk(t testing.TB, dir string) string {
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
	testenv.Eventually(t, 30*time.Second, "readyz names the failing store", func() (bool, string) {
		code, failed := s.readyz()
		return code == 503 && strings.Contains(failed["store"], "failing"), fmt.Sprint(code, failed)
	})

	publisher(t, s.mqttURL).Publish("zigbee2mqtt/gas-3-2-201", 1, false, `{"gas":true}`)
	testenv.Eventually(t, 20*time.Second, "close command and siren on a full disk", func() (bool, string) {
		return cmds.count("valve-3-2-201/set", `"OFF"`) >= 1 && cmds.count("siren-3/set", "emergency") >= 1, cmds.String()
	})
	// The valve stays silent: three tries in 3 s, then valve.fault.
	testenv.Eventually(t, 30*time.Second, "valve.fault and storage alarms shown from memory", func() (bool, string) {
		as, err := s.openAlarms()
		if err != nil {
			return false, err.Error()
		}
		vf, ok1 := findAlarm(as, "valve.fault")
		ss, ok2 := findAlarm(as, "system.storage")
		return ok1 && vf.Unstored && ok2 && ss.Unstored, fmt.Sprintf("%+v", as)
	})
	testenv.Eventually(t, 10*time.Second, "the siren sounded again for the fault, alarms on MQTT", func() (bool, string) {
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
	testenv.Eventually(t, 60*time.Second, "alarms and events stored once space is back", func() (bool, string) {
		leak, _ := s.allEvents("gas.leak")
		fault, _ := s.allEvents("valve.fault")
		storage, _ := s.allEvents("system.storage")
		as, _ := s.openAlarms()
		vf, ok := findAlarm(as, "valve.fault")
		return len(leak) == 1 && len(fault) == 1 && len(storage) >= 1 && ok && !vf.Unstored,
			fmt.Sprintf("%d leak, %d valve.fault, %d system.storage; alarms %+v", len(leak), len(fault), len(storage), as)
	})
	testenv.Eventually(t, 30*time.Second, "readyz ok again", func() (bool, string) {
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
	testenv.Eventually(t, 30*time.Second, "broker store commits failing", func() (bool, string) {
		n := s.metric("warden_mqtt_broker_persist_errors_total")
		return n >= 1, fmt.Sprint("persist errors ", n)
	})
	publish(t, publisher(t, s.mqttURL), "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
	testenv.Eventually(t, 20*time.Second, "close command", func() (bool, string) {
		return cmds.count("valve-3-2-201/set", `"OFF"`) >= 1, cmds.String()
	})
	testenv.Eventually(t, 20*time.Second, "leak alarm and storage alarm on MQTT", func() (bool, string) {
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

// embedded adds keys to the embedded broker's section of the site's config.
func (s *site) embedded(extra string) {
	s.t.Helper()
	b, err := os.ReadFile(s.cfgPath)
	if err != nil {
		s.t.Fatal(err)
	}
	out := strings.Replace(string(b), "allow_anonymous: true}", "allow_anonymous: true, "+extra+"}", 1)
	if out == string(b) {
		s.t.Fatal("site config has no embedded broker section")
	}
	if err := os.WriteFile(s.cfgPath, []byte(out), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) mqttHostPort() (string, string) {
	hp := strings.TrimPrefix(s.mqttURL, "tcp://")
	i := strings.LastIndexByte(hp, ':')
	return hp[:i], hp[i+1:]
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// referenceACL is the rules of mqtt.embedded.acl in configs/warden.yaml as
// flow YAML (without brackets), so
// the tests check the ACL installers copy.
func referenceACL(t *testing.T) string {
	t.Helper()
	c, err := config.Load(filepath.Join(testenv.RepoRoot(t), "configs", "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// JSON is YAML; the keys are the config's.
	var rules []map[string]any
	for _, r := range c.MQTT.Embedded.ACL {
		rules = append(rules, map[string]any{"username": r.Username, "read": r.Read, "write": r.Write})
	}
	js, err := json.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(string(js), "["), "]")
}

// mqttConnect connects a paho client as user with a client id; it returns
// the connect error (nil when accepted).
func mqttConnect(t *testing.T, url, id, user, pass string, clean bool) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect as %s/%s: timed out", user, id)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// A hostile or careless device account cannot take the gateway's sessions
// or another account's, cannot command the valve through zigbee2mqtt's
// per-attribute or bridge topics, and cannot leave a retained command; a
// real zigbee2mqtt bridge with the reference ACL (mosquitto_sub's exact
// subscription, zigbee2mqtt/#) receives the valve's close command, also
// while a takeover storm runs.
func TestHostileDeviceAccounts(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian mosquitto-clients; make deps installs it)", tool)
		}
	}
	s := newSite(t, "", gasHome("30s"))
	s.embedded(fmt.Sprintf(`users: [{username: zigbee2mqtt, password_hash: %q}, {username: dev-a, password_hash: %q},
    {username: dev-b, password_hash: %q}, {username: ha, password_hash: %q}],
    command_users: [ha], acl: [%s, {username: ha, read: ["warden/#"], write: ["zigbee2mqtt/#"]}]`,
		bcryptHash(t, "pw-z"), bcryptHash(t, "pw-a"), bcryptHash(t, "pw-b"), bcryptHash(t, "pw-h"), referenceACL(t)))
	s.start()
	host, port := s.mqttHostPort()

	// The bridge, exactly as zigbee2mqtt subscribes.
	bridge := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-u", "zigbee2mqtt", "-P", "pw-z",
		"-i", "zigbee2mqtt-bridge", "-q", "1", "-v", "-t", "zigbee2mqtt/#")
	var out lockedWriter
	out.w = new(bytes.Buffer)
	bridge.Stdout, bridge.Stderr = &out, &out
	if err := bridge.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bridge.Process.Kill(); _ = bridge.Wait() })
	seen := func() string { out.mu.Lock(); defer out.mu.Unlock(); return out.w.String() }

	// Sessions belong to users.
	for _, id := range []string{"warden-gw-test", "warden-gw-test-cmd"} {
		if _, err := mqttConnect(t, s.mqttURL, id, "dev-a", "pw-a", true); err == nil {
			t.Errorf("dev-a connected with the gateway's client id %s", id)
		}
	}
	a, err := mqttConnect(t, s.mqttURL, "sensor-1", "dev-a", "pw-a", false)
	if err != nil {
		t.Fatalf("dev-a as sensor-1: %v", err)
	}
	a.Disconnect(50)
	if _, err := mqttConnect(t, s.mqttURL, "sensor-1", "dev-b", "pw-b", false); err == nil {
		t.Error("dev-b took over dev-a's session sensor-1")
	}
	if _, err := mqttConnect(t, s.mqttURL, "sensor-1", "dev-a", "pw-a", false); err != nil {
		t.Errorf("dev-a could not resume its own session: %v", err)
	}

	// mosquitto_pub as a device account.
	pub := func(user, pass string, args ...string) {
		cmd := exec.Command("mosquitto_pub", append([]string{"-h", host, "-p", port, "-u", user, "-P", pass}, args...)...)
		_ = cmd.Run() // a refused QoS 1 publish ends in a disconnect: an error here
	}

	// A takeover storm while the detector reports a leak.
	sub, err := mqttConnect(t, s.mqttURL, "ha-status", "ha", "pw-h", true)
	if err != nil {
		t.Fatal(err)
	}
	status := collect(t, sub, "warden/gw-test/status")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, id := range []string{"warden-gw-test", "warden-gw-test-cmd"} {
				if c, err := mqttConnect(t, s.mqttURL, id, "dev-b", "pw-b", true); err == nil {
					c.Disconnect(0)
				}
			}
		}
	}()
	time.Sleep(time.Second)
	pub("zigbee2mqtt", "pw-z", "-q", "1", "-t", "zigbee2mqtt/gas-3-2-201", "-m", `{"gas":true}`)
	testenv.Eventually(t, 20*time.Second, "the bridge receives the close command during the storm", func() (bool, string) {
		return strings.Contains(seen(), `zigbee2mqtt/valve-3-2-201/set {"state":"OFF"}`), seen()
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if status.count("offline") != 0 || status.count("online") == 0 {
		t.Errorf("gateway status flapped during the storm:\n%s", status)
	}
	if n := s.metric("warden_mqtt_client_id_refused_total", `reason="reserved"`); n < 10 {
		t.Errorf("reserved-id refusals = %v, want the storm's", n)
	}
	if n := s.metric("warden_mqtt_client_id_refused_total", `reason="owned"`); n != 1 {
		t.Errorf("owned-session refusals = %v, want 1", n)
	}

	// Command bypasses from the bridge's own account, QoS 0 and 1.
	pub("zigbee2mqtt", "pw-z", "-q", "1", "-t", "zigbee2mqtt/valve-3-2-201/set/state", "-m", "ON")
	pub("zigbee2mqtt", "pw-z", "-q", "0", "-t", "zigbee2mqtt/valve-3-2-201/set/state", "-m", "ON")
	pub("zigbee2mqtt", "pw-z", "-q", "1", "-t", "zigbee2mqtt/valve-3-2-201/set", "-m", `{"state":"ON"}`)
	pub("zigbee2mqtt", "pw-z", "-q", "1", "-t", "zigbee2mqtt/bridge/request/permit_join", "-m", `{"value":true}`)
	// A trusted command user may command, but not leave a retained command.
	pub("ha", "pw-h", "-q", "1", "-r", "-t", "zigbee2mqtt/valve-3-2-201/set", "-m", `{"state":"ON"}`)
	pub("ha", "pw-h", "-q", "1", "-t", "zigbee2mqtt/siren-3/set", "-m", `{"warning":{"mode":"stop"}}`)
	testenv.Eventually(t, 10*time.Second, "the trusted user's command arrives", func() (bool, string) {
		return strings.Contains(seen(), "zigbee2mqtt/siren-3/set"), seen()
	})
	for _, bad := range []string{"valve-3-2-201/set/state", `{"state":"ON"}`, "bridge/request"} {
		if strings.Contains(seen(), bad) {
			t.Errorf("the bridge received %q:\n%s", bad, seen())
		}
	}
	if n := s.metric("warden_mqtt_acl_denied_total", `action="write"`); n < 4 {
		t.Errorf("write denials = %v, want ≥ 4", n)
	}
	if n := s.metric("warden_mqtt_acl_denied_total", `action="retain"`); n != 1 {
		t.Errorf("retained-command refusals = %v, want 1", n)
	}

	// After a restart no retained command comes back.
	if err := s.term(); err != nil {
		t.Fatal(err)
	}
	s.start()
	got, _ := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-u", "zigbee2mqtt", "-P", "pw-z",
		"-t", "zigbee2mqtt/+/set", "-t", "zigbee2mqtt/+/set/#", "-v", "-W", "2").CombinedOutput()
	if strings.Contains(string(got), "zigbee2mqtt/") {
		t.Errorf("a retained command came back after the restart: %s", got)
	}
}

func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// Strangers who never log in cannot make the broker hold memory: four
// connections announcing a 250 MiB CONNECT are closed on the header
// (the daemon once grew from 148 MB to 1.17 GB), silent sockets are closed
// after connect_timeout and beyond 64 at once, and a device still gets in.
func TestPreAuthMemoryAttack(t *testing.T) {
	s := newSite(t, "", counterDevice)
	s.embedded("connect_timeout: 1s")
	s.start()
	addr := strings.TrimPrefix(s.mqttURL, "tcp://")
	pid := s.cmd.Process.Pid
	before := rssBytes(t, pid)

	// 0x10 CONNECT, remaining length 262144000 (250 MiB) as a varint.
	header := []byte{0x10}
	for n := 250 << 20; ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			header = append(header, b|0x80)
			continue
		}
		header = append(header, b)
		break
	}
	var big []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append(header, bytes.Repeat([]byte{0}, 4096)...)); err != nil {
			t.Fatal(err)
		}
		big = append(big, c)
	}
	for i, c := range big {
		if !closedByServer(c, 5*time.Second) {
			t.Errorf("connection %d announcing 250 MiB is still open", i)
		}
	}
	time.Sleep(time.Second)
	if grew := rssBytes(t, pid) - before; grew > 50<<20 {
		t.Errorf("RSS grew by %d MiB under the 250 MiB-header attack, want < 50", grew>>20)
	}

	var silent []net.Conn
	for range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	open := 0
	for _, c := range silent {
		if !closedByServer(c, 4*time.Second) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of 300 silent sockets still open after connect_timeout", open)
	}
	if grew := rssBytes(t, pid) - before; grew > 50<<20 {
		t.Errorf("RSS grew by %d MiB, want < 50", grew>>20)
	}
	for _, reason := range []string{"packet_too_large", "timeout", "handshakes"} {
		if n := s.metric("warden_mqtt_connections_refused_total", `reason="`+reason+`"`); n < 1 {
			t.Errorf("warden_mqtt_connections_refused_total{reason=%q} = %v", reason, n)
		}
	}
	publish(t, publisher(t, s.mqttURL), "test/counter", []byte(`{"n":1}`))
}

// A typo or a wrong kind in what the interlock relies on fails
// check-config and run with exit code 2, naming the key and line.
func TestSafetyReferencesCheckedAtStart(t *testing.T) {
	cases := []struct {
		name, devices, rules, key string
		line                      int
	}{
		{"valve typo", strings.Replace(gasHome("5s"), "valve: valve-3-2-201,", "valve: valve-3-2-21,", 1), "", "devices[0].valve", 11},
		{"second of two valves a typo", strings.Replace(gasHome("5s"), "valve: valve-3-2-201,", "valve: [valve-3-2-201, valve-3-2-21],", 1), "", "devices[0].valve[1]", 11},
		{"valve names a wristband", strings.Replace(gasHome("5s"), "valve: valve-3-2-201,", "valve: band-1,", 1) +
			"  - {id: band-1, kind: wristband, driver: zigbee2mqtt, topic: zigbee2mqtt/band-1}\n", "", "devices[0].valve", 11},
		{"siren names a barrier gate", strings.Replace(gasHome("5s"), "valve: valve-3-2-201,", "valve: valve-3-2-201, siren: gate-1,", 1) +
			"  - {id: gate-1, kind: barrier_gate, driver: generic, topic: lpr/gate-1}\n", "", "devices[0].siren", 11},
		{"a rule that would open the valve", gasHome("5s"),
			"rules:\n  - name: reopen\n    when: {type: gas.cleared}\n    then:\n      - {action: publish, topic: zigbee2mqtt/valve-3-2-201/set, payload: '{\"state\":\"ON\"}'}\n",
			"rules[0].then[0].topic", 19},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSite(t, "", c.devices)
			if c.rules != "" {
				f, err := os.OpenFile(s.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(c.rules)
				f.Close()
			}
			for _, sub := range []string{"check-config", "run"} {
				out, err := exec.Command(wardenBinary(t), sub, "--config", s.cfgPath).CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 {
					t.Fatalf("%s: %v, want exit 2\n%s", sub, err, out)
				}
				if want := fmt.Sprintf("warden.yaml:%d: %s:", c.line, c.key); !strings.Contains(string(out), want) {
					t.Errorf("%s output lacks %q:\n%s", sub, want, out)
				}
			}
		})
	}
}

// A warden.db that is empty or damaged stops the start with exit code 3
// and says what to do; the store never starts empty over an existing file.
func TestDamagedDatabaseFailsStart(t *testing.T) {
	t.Run("empty file", func(t *testing.T) {
		s := newSite(t, "", counterDevice)
		data := filepath.Join(s.dir, "data")
		os.MkdirAll(data, 0o700)
		os.WriteFile(filepath.Join(data, "warden.db"), nil, 0o600)
		out, err := exec.Command(wardenBinary(t), "run", "--config", s.cfgPath).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "empty (0 bytes)") {
			t.Fatalf("run: %v, want exit 3 naming the empty file\n%s", err, out)
		}
	})
	t.Run("damaged after an unclean stop", func(t *testing.T) {
		s := newSite(t, "", counterDevice)
		s.start()
		c := publisher(t, s.mqttURL)
		for n := range 300 {
			publish(t, c, "test/counter", fmt.Appendf(nil, `{"n":%d,"pad":"%0500d"}`, n, n))
		}
		s.kill9()
		db := filepath.Join(s.dir, "data", "warden.db")
		if _, err := os.Stat(filepath.Join(s.dir, "data", "warden.clean")); err == nil {
			t.Fatal("the clean-stop marker exists after kill -9")
		}
		// Overwrite pages after the two meta pages with garbage.
		f, err := os.OpenFile(db, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		junk := bytes.Repeat([]byte{0xA5, 0x5A, 0x13, 0x37}, 1024)
		for off := int64(16 << 10); off+4096 < fi.Size(); off += 3 * 4096 {
			f.WriteAt(junk, off)
		}
		f.Close()
		cmd := exec.Command(wardenBinary(t), "run", "--config", s.cfgPath)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "database file is corrupt") {
			t.Fatalf("run: %v, want exit 3 for a damaged database\n%s", err, out)
		}
	})
}

// A missing face-gallery key turns face recognition off with a system.fault
// alarm; the gateway runs on and the interlock closes the valve.
// A face setup that must not run (a missing gallery key; a recognizer_input
// that makes every stranger match) turns face recognition off with a
// system.fault alarm naming why, and the gas valve still closes.
func TestDeadFaceKeyKeepsTheRestRunning(t *testing.T) {
	d := sharedData(t)
	models, _ := filepath.Abs("../../models")
	goodKey := filepath.Join(t.TempDir(), "face.key")
	if err := os.WriteFile(goodKey, []byte(strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ input, key, reason string }{
		"missing key":            {"arcface", filepath.Join(t.TempDir(), "missing.key"), "key"},
		"wrong recognizer_input": {"sface", goodKey, "self-check failed"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, "", gasHome("30s")+fmt.Sprintf(`cameras:
  - id: entrance
    url: %q
    detect:
      face: {detector_model: %q, recognizer_model: %q, recognizer_input: %s, key_file: %q}
`, filepath.Join(t.TempDir(), "no-such-clip.mp4"), filepath.Join(models, "face_detection_yunet_2022mar.onnx"),
				filepath.Join(d, "models/face_embed_112_fr_feature.onnx"), c.input, c.key))
			s.start()
			sub := publisher(t, s.mqttURL)
			cmds := collect(t, sub, "zigbee2mqtt/+/set")
			publish(t, publisher(t, s.mqttURL), "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
			testenv.Eventually(t, 20*time.Second, "close command with face recognition off", func() (bool, string) {
				return cmds.count("valve-3-2-201/set", `"OFF"`) >= 1, cmds.String()
			})
			testenv.Eventually(t, 20*time.Second, "a system.fault alarm for face recognition", func() (bool, string) {
				as, err := s.openAlarms()
				if err != nil {
					return false, err.Error()
				}
				a, ok := findAlarm(as, "system.fault")
				return ok && a.Source.ID == "face", fmt.Sprintf("%+v", as)
			})
			evs, _ := s.allEvents("system.fault")
			if len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0].Data["reason"]), c.reason) || evs[0].Data["reason_code"] != "face.disabled" {
				t.Errorf("system.fault events %+v, want one whose reason says %q", evs, c.reason)
			}
		})
	}
}
