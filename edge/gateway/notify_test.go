package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"
)

// hookSink is a platform-side webhook (or robot) on 127.0.0.1 that records
// what arrives.
type hookSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	at   []time.Time
	wake chan struct{}
}

func newHookSink(t testing.TB, answer string) *hookSink {
	h := &hookSink{wake: make(chan struct{}, 1024)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		h.mu.Lock()
		h.got, h.at = append(h.got, body), append(h.at, now)
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
		fmt.Fprint(w, answer)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) bodies() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.got...)
}

const notifyDevices = `  - {id: gas-3-2-201, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-3-2-201",
     location: {building: "3", unit: "2", room: "201"}}
  - {id: sos-5-2-301, kind: wristband, driver: zigbee2mqtt, topic: "zigbee2mqtt/sos-5-2-301",
     location: {building: "5", unit: "2", room: "301"}, notify: [family]}
`

// A gas leak and a wristband SOS published to the running gateway reach the
// guard room's WeCom robot and the resident's family webhook, and the
// deliveries are on the alarm's timeline.
func TestAlarmsArePushedToPeople(t *testing.T) {
	robot := newHookSink(t, `{"errcode":0,"errmsg":"ok"}`)
	family := newHookSink(t, "")
	cfg := notifyDevices + fmt.Sprintf(`notify:
  console_url: "http://192.168.10.2:8080"
  targets:
    - {name: guard-room, kind: wecom, url: %q}
    - {name: family, kind: webhook, url: %q}
  routes:
    - {types: [gas.leak, wristband.*], targets: [guard-room]}
`, robot.srv.URL+"/cgi-bin/webhook/send?key=k", family.srv.URL+"/hook")
	s := newSite(t, "", cfg)
	s.start()
	c := publisher(t, s.mqttURL)
	publish(t, c, "zigbee2mqtt/gas-3-2-201", []byte(`{"gas":true}`))
	publish(t, c, "zigbee2mqtt/sos-5-2-301", []byte(`{"action":"sos"}`))

	testenv.Eventually(t, 30*time.Second, "the robot gets both alarms and the family the SOS", func() (bool, string) {
		return len(robot.bodies()) == 2 && len(family.bodies()) == 1, fmt.Sprintf("robot %d, family %d", len(robot.bodies()), len(family.bodies()))
	})
	var texts []string
	for _, b := range robot.bodies() {
		md, _ := b["markdown"].(map[string]any)
		texts = append(texts, fmt.Sprint(md["content"]))
	}
	sort.Strings(texts)
	all := strings.Join(texts, "\n")
	for _, want := range []string{"【生命安全】燃气泄漏", "3 号楼 2 单元 201 室", "【生命安全】手环求救", "5 号楼 2 单元 301 室", "http://192.168.10.2:8080/#alarm="} {
		if !strings.Contains(all, want) {
			t.Errorf("robot messages lack %q:\n%s", want, all)
		}
	}
	fam := family.bodies()[0]
	if fam["action"] != "opened" || fam["alarm"].(map[string]any)["type"] != "wristband.sos" {
		t.Errorf("family webhook got %v", fam)
	}
	id := fam["alarm"].(map[string]any)["id"].(string)
	testenv.Eventually(t, 10*time.Second, "deliveries on the SOS timeline", func() (bool, string) {
		var a struct {
			Timeline []struct{ Action, Note string } `json:"timeline"`
		}
		if err := s.apiGet("/api/v1/alarms/"+id, &a); err != nil {
			return false, err.Error()
		}
		var got []string
		for _, e := range a.Timeline {
			if e.Action == "notified" {
				got = append(got, e.Note)
			}
		}
		sort.Strings(got)
		return strings.Join(got, ",") == "family,guard-room", fmt.Sprint(got)
	})
	if v := s.metric("warden_notify_sent_total", `target="guard-room"`); v != 2 {
		t.Errorf("warden_notify_sent_total{guard-room} = %v", v)
	}
}

// BenchmarkAlarmToWebhook times a gas leak published to the gateway until
// the notify webhook receives its alarm, under the leak benchmark's 2,000
// msg/s background load; beside it, the same webhook server's bare round
// trip (an HTTP POST from this process) under the same load. Each sample
// resolves the alarm first so the next leak opens a new one.
//
//	go test -run '^$' -bench BenchmarkAlarmToWebhook -benchtime 200x ./edge/gateway
func BenchmarkAlarmToWebhook(b *testing.B) {
	const devices, rate = 1000, 2000
	var devs strings.Builder
	devs.WriteString(`  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-1"}
`)
	for i := range devices {
		fmt.Fprintf(&devs, "  - {id: band-%d, kind: wristband, driver: zigbee2mqtt, topic: \"bg/band-%d\"}\n", i, i)
	}
	b.Run("webhook-roundtrip", func(b *testing.B) {
		hook := newHookSink(b, "")
		s := benchSite(b, "", devs.String())
		stop := background(b, s.mqttURL, devices, rate)
		defer stop()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			resp, err := http.Post(hook.srv.URL, "application/json", strings.NewReader(`{"action":"opened"}`))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			<-hook.wake
			hook.mu.Lock()
			lat = append(lat, hook.at[len(hook.at)-1].Sub(start))
			hook.mu.Unlock()
		}
		b.StopTimer()
		reportLatencies(b, lat)
	})
	b.Run("gateway-alarm-to-webhook", func(b *testing.B) {
		hook := newHookSink(b, "")
		cfg := devs.String() + fmt.Sprintf(`notify:
  targets: [{name: hook, kind: webhook, url: %q, rate_per_minute: 6000}]
  routes: [{types: [gas.leak], targets: [hook]}]
`, hook.srv.URL)
		s := benchSite(b, "", cfg)
		stop := background(b, s.mqttURL, devices, rate)
		defer stop()
		defer gatewayCores(b, s)()
		pub := connect(b, s.mqttURL, "lat-pub")
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			pub.Publish("zigbee2mqtt/gas-1", 1, false, `{"gas":false}`).Wait()
			start := time.Now()
			pub.Publish("zigbee2mqtt/gas-1", 1, false, `{"gas":true}`)
			select {
			case <-hook.wake:
			case <-time.After(10 * time.Second):
				b.Fatalf("no webhook within 10s (sample %d)", i)
			}
			hook.mu.Lock()
			at, body := hook.at[len(hook.at)-1], hook.got[len(hook.got)-1]
			hook.mu.Unlock()
			lat = append(lat, at.Sub(start))
			b.StopTimer()
			id := body["alarm"].(map[string]any)["id"].(string)
			if code, out := s.apiDo("POST", "/api/v1/alarms/"+id+"/resolve", `{"note":"bench"}`); code != 200 {
				b.Fatalf("resolve: %d %s", code, out)
			}
			b.StartTimer()
		}
		b.StopTimer()
		reportLatencies(b, lat)
	})
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
