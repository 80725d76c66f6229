package bus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/all"
	"github.com/smartcommunity/warden/edge/bus"
	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
)

func bustestEmbedded(t *testing.T, opts ...func(*bus.BrokerOptions)) (string, *bus.Broker) {
	return bustest.Embedded(t, opts...)
}

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

var internal = bus.Credentials{Username: "warden", Password: "internal-secret"}

func secured(t *testing.T, reg prometheus.Registerer, acl []config.ACLRule) string {
	users := []config.MQTTUser{{Username: "dev-gas", PasswordHash: hash(t, "gas-pw")}, {Username: "dev-valve", PasswordHash: hash(t, "valve-pw")}}
	url, _ := bustest.Embedded(t, func(o *bus.BrokerOptions) {
		o.AllowAnonymous = false
		o.TrustAnonymous = false
		o.Users = users
		o.ACL = acl
		o.Internal = internal
		o.Registerer = reg
	})
	return url
}

func TestAuth(t *testing.T) {
	reg := prometheus.NewRegistry()
	url := secured(t, reg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, tc := range []struct{ user, pass string }{{"dev-gas", "wrong"}, {"", ""}, {"nobody", "x"}, {"warden", "gas-pw"}} {
		_, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "c-" + tc.user, Username: tc.user, Password: tc.pass})
		if err == nil {
			t.Errorf("user %q with wrong password connected", tc.user)
		} else if strings.Contains(err.Error(), tc.pass) && tc.pass != "" {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	if got := testenv.CounterValue(t, reg, "warden_mqtt_auth_failures_total"); got != 4 {
		t.Errorf("auth failures = %v, want 4", got)
	}
	gateway(t, bus.ClientOptions{URL: url, ClientID: "ok", Username: "dev-gas", Password: "gas-pw"})
	gateway(t, bus.ClientOptions{URL: url, ClientID: "gw", Username: internal.Username, Password: internal.Password})
}

func TestBadUserHash(t *testing.T) {
	_, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", Users: []config.MQTTUser{{Username: "u", PasswordHash: "plain"}}})
	if err == nil || !strings.Contains(err.Error(), `"u"`) {
		t.Fatalf("want an error naming the user, got %v", err)
	}
}

func TestACL(t *testing.T) {
	for _, tc := range []struct {
		name string
		acl  []config.ACLRule
	}{
		{"default", nil},
		{"rules", []config.ACLRule{
			{Username: "*", Write: []string{"zigbee2mqtt/#", "warden/#"}, Read: []string{"zigbee2mqtt/+/set"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			url := secured(t, reg, tc.acl)
			seen := newInbox()
			gw := gateway(t, bus.ClientOptions{URL: url, ClientID: "gw", Username: internal.Username, Password: internal.Password,
				Subscriptions: []string{"#"}, OnMessage: func(m *bus.Message) { m.Ack(); seen.add(m) }})
			valveIn := newInbox()
			gateway(t, bus.ClientOptions{URL: url, ClientID: "valve-1", Username: "dev-valve", Password: "valve-pw",
				Subscriptions: []string{"zigbee2mqtt/valve-1/set"}, OnMessage: func(m *bus.Message) { m.Ack(); valveIn.add(m) }})

			dev := device(t, url, "gas-1", "dev-gas", "gas-pw")
			for _, topic := range []string{"zigbee2mqtt/valve-1/set", "warden/x/status", "warden/gw/events/gas.leak", "tuya/1/command", "a/cmd"} {
				publish(t, dev, topic, 0, false, "forged")
			}
			publish(t, dev, "zigbee2mqtt/gas-1", 1, false, "reading")
			ms := seen.waitFor(t, "reading", func(ms []*bus.Message) bool { return countDistinct(ms, "zigbee2mqtt/gas-1") == 1 })
			for _, m := range ms {
				if string(m.Payload) == "forged" {
					t.Errorf("gateway saw a forged message on %s", m.Topic)
				}
			}
			if got := testenv.MetricValue(t, reg, "warden_mqtt_acl_denied_total", map[string]string{"action": "write"}); got < 5 {
				t.Errorf("denied writes = %v, want >= 5", got)
			}
			// the internal user may command the valve
			if err := gw.Publish(context.Background(), "zigbee2mqtt/valve-1/set", 1, false, []byte(`{"state":"OFF"}`)); err != nil {
				t.Fatal(err)
			}
			valveIn.waitFor(t, "command at the valve", func(ms []*bus.Message) bool { return len(ms) == 1 })
		})
	}
}

// TestPersistence: a persistent subscriber's queued messages survive a
// broker closed without flushing, and arrive after it reconnects.
func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	b, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", AllowAnonymous: true, PersistPath: path})
	if err != nil {
		t.Fatal(err)
	}
	url := "tcp://" + b.Addr()
	opts := bus.ClientOptions{URL: url, ClientID: "gw-persist", Subscriptions: []string{"dev/#"}}
	ctx := context.Background()
	c, err := bus.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ctx)
	dev := device(t, url, "dev-p", "", "")
	for i := range 100 {
		publish(t, dev, "dev/p", 1, false, fmt.Sprint(i))
	}
	publish(t, dev, "dev/retained", 1, true, "kept")
	dev.Disconnect(0)
	bus.CloseLikeKill(b)

	b2, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", AllowAnonymous: true, PersistPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	expectQueued(t, "tcp://"+b2.Addr(), opts, 100)
}

func expectQueued(t *testing.T, url string, opts bus.ClientOptions, n int) {
	t.Helper()
	in := newInbox()
	opts.URL = url
	opts.OnMessage = func(m *bus.Message) { m.Ack(); in.add(m) }
	gateway(t, opts)
	in.waitFor(t, fmt.Sprintf("%d messages after restart", n), func(ms []*bus.Message) bool { return countDistinct(ms, "dev/p") >= n })
	late := newInbox()
	gateway(t, bus.ClientOptions{URL: url, ClientID: "late", Subscriptions: []string{"dev/retained"},
		OnMessage: func(m *bus.Message) { m.Ack(); late.add(m) }})
	late.waitFor(t, "retained message after restart", func(ms []*bus.Message) bool { return len(ms) == 1 && string(ms[0].Payload) == "kept" })
}

// TestKill9 runs the broker in a child process, kills it with SIGKILL right
// after the publisher got its PUBACKs, and restarts it from the file.
func TestKill9(t *testing.T) {
	if p := os.Getenv("WARDEN_BUS_CHILD_DB"); p != "" {
		b, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", AllowAnonymous: true, PersistPath: p})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("ADDR", b.Addr())
		time.Sleep(time.Hour)
		return
	}
	path := filepath.Join(t.TempDir(), "broker.db")
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), "WARDEN_BUS_CHILD_DB="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				return cmd, "tcp://" + a
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child broker did not start")
		return nil, ""
	}
	cmd, url := start()
	opts := bus.ClientOptions{URL: url, ClientID: "gw-kill", Subscriptions: []string{"dev/#"}}
	ctx := context.Background()
	c, err := bus.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ctx)
	dev := device(t, url, "dev-k", "", "")
	// pipelined, as a busy sensor network: all must be PUBACKed
	var toks []interface {
		WaitTimeout(time.Duration) bool
		Error() error
	}
	for i := range 100 {
		toks = append(toks, dev.Publish("dev/p", 1, false, fmt.Sprint(i)))
	}
	toks = append(toks, dev.Publish("dev/retained", 1, true, "kept"))
	for _, tok := range toks {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	_ = cmd.Process.Kill() // SIGKILL right after the last PUBACK
	_ = cmd.Wait()
	dev.Disconnect(0)

	b, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", AllowAnonymous: true, PersistPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	expectQueued(t, "tcp://"+b.Addr(), opts, 100)
}

func TestBrokerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	url, b := bustest.Embedded(t, func(o *bus.BrokerOptions) { o.Registerer = reg })
	gateway(t, bus.ClientOptions{URL: url, ClientID: "gw", Registerer: reg})
	if n, err := testutil.GatherAndCount(reg, "warden_mqtt_broker_dropped_total", "warden_mqtt_broker_clients_connected", "warden_mqtt_connected", "warden_mqtt_messages_total"); err != nil || n < 4 {
		t.Fatalf("metrics: %d series, %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP warden_mqtt_connected 1 when the gateway's MQTT client is connected.\n# TYPE warden_mqtt_connected gauge\nwarden_mqtt_connected 1\n"), "warden_mqtt_connected"); err != nil {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// A retained command left in broker.db (an older version kept them) is not
// handed to the actuator again on restart, and is deleted; other retained
// messages stay.
func TestRetainedCommandsDroppedOnReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	for topic, payload := range map[string]string{"zigbee2mqtt/valve-1/set": `{"state":"ON"}`, "zigbee2mqtt/valve-1/set/state": "ON", "sensor/x": "kept"} {
		if err := bus.SeedRetained(path, topic, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		b, err := bus.StartBroker(bus.BrokerOptions{Listen: "127.0.0.1:0", AllowAnonymous: true, PersistPath: path})
		if err != nil {
			t.Fatal(err)
		}
		in := newInbox()
		gateway(t, bus.ClientOptions{URL: "tcp://" + b.Addr(), ClientID: fmt.Sprintf("late-%d", round), Subscriptions: []string{"#"},
			OnMessage: func(m *bus.Message) { m.Ack(); in.add(m) }})
		in.waitFor(t, "the retained sensor state", func(ms []*bus.Message) bool { return countDistinct(ms, "sensor/x") == 1 })
		time.Sleep(200 * time.Millisecond)
		for _, m := range in.all() {
			if strings.Contains(m.Topic, "/set") {
				t.Errorf("round %d: retained command %s %s handed out after a restart", round, m.Topic, m.Payload)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Writes to any command form are refused for device accounts; the same
// user may resume its own session, another user may not take it, and no
// device may use the gateway's client ids.
func TestCommandSpaceAndSessionOwners(t *testing.T) {
	reg := prometheus.NewRegistry()
	users := []config.MQTTUser{{Username: "dev-gas", PasswordHash: hash(t, "gas-pw")}, {Username: "dev-valve", PasswordHash: hash(t, "valve-pw")}}
	url, _ := bustest.Embedded(t, func(o *bus.BrokerOptions) {
		o.AllowAnonymous, o.TrustAnonymous = false, false
		o.Users, o.Internal, o.Registerer = users, internal, reg
		o.Reserved = []string{"warden-gw", "warden-gw-cmd"}
		o.Commands = drivers.Default.CommandSpace([]config.Device{{ID: "gate-1", Kind: "barrier_gate", Driver: "generic", Topic: "lpr/gate-1",
			Extra: map[string]any{"command_topic": "barrier/east/open"}}})
	})
	seen := newInbox()
	gateway(t, bus.ClientOptions{URL: url, ClientID: "warden-gw", Username: internal.Username, Password: internal.Password,
		Subscriptions: []string{"#"}, OnMessage: func(m *bus.Message) { m.Ack(); seen.add(m) }})
	dev := device(t, url, "gas-1", "dev-gas", "gas-pw")
	for _, topic := range []string{"zigbee2mqtt/valve-1/set/state", "zigbee2mqtt/bridge/request/permit_join", "barrier/east/open", "barrier/east/open/now"} {
		publish(t, dev, topic, 0, false, "forged")
	}
	publish(t, dev, "zigbee2mqtt/gas-1", 1, false, "reading")
	seen.waitFor(t, "reading", func(ms []*bus.Message) bool { return countDistinct(ms, "zigbee2mqtt/gas-1") == 1 })
	for _, m := range seen.all() {
		if string(m.Payload) == "forged" {
			t.Errorf("a device wrote the command topic %s", m.Topic)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "warden-gw-cmd", Username: "dev-gas", Password: "gas-pw"}); err == nil {
		t.Error("a device account connected with the gateway's command client id")
	}
	if _, err := bus.Connect(ctx, bus.ClientOptions{URL: url, ClientID: "gas-1", Username: "dev-valve", Password: "valve-pw"}); err == nil {
		t.Error("dev-valve took over dev-gas's session gas-1")
	}
	if got := testenv.MetricValue(t, reg, "warden_mqtt_client_id_refused_total", map[string]string{"reason": "reserved"}); got != 1 {
		t.Errorf("reserved refusals = %v", got)
	}
	if got := testenv.MetricValue(t, reg, "warden_mqtt_client_id_refused_total", map[string]string{"reason": "owned"}); got != 1 {
		t.Errorf("owned refusals = %v", got)
	}
}
