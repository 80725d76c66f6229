package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"
)

// A console login survives the real gateway stopping (cleanly, then with
// kill -9) and starting again on the same data: the cookie still works and
// its CSRF token still acknowledges an alarm. The browser test shows the
// page side; this is the `warden run` binary.
func TestConsoleSessionSurvivesGatewayRestart(t *testing.T) {
	s := newSite(t, "", `  - {id: gas-1, kind: gas_detector, driver: zigbee2mqtt, topic: "zigbee2mqtt/gas-1", location: {building: "1"}}
`)
	s.start()
	resp, err := http.Post("http://"+s.apiAddr+"/api/v1/session", "application/json", strings.NewReader(`{"token":"`+adminToken+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ CSRF, Name string }
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "warden_session" {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || info.CSRF == "" {
		t.Fatalf("login: %d cookie %v", resp.StatusCode, cookie)
	}
	withCookie := func(method, path string, csrf bool) (int, string) {
		req, _ := http.NewRequest(method, "http://"+s.apiAddr+path, nil)
		req.AddCookie(cookie)
		if csrf {
			req.Header.Set("X-CSRF-Token", info.CSRF)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		r.Body.Close()
		return r.StatusCode, r.Status
	}
	publish(t, publisher(t, s.mqttURL), "zigbee2mqtt/gas-1", []byte(`{"gas":true}`))
	var id string
	testenv.Eventually(t, 20*time.Second, "the leak alarm", func() (bool, string) {
		var l struct{ Alarms []struct{ ID string } }
		if err := s.apiGet("/api/v1/alarms?state=open", &l); err != nil || len(l.Alarms) == 0 {
			return false, fmt.Sprint(err)
		}
		id = l.Alarms[0].ID
		return true, ""
	})

	for _, how := range []string{"SIGTERM", "kill -9"} {
		if how == "SIGTERM" {
			if err := s.term(); err != nil {
				t.Fatal(err)
			}
		} else {
			s.kill9()
		}
		s.start()
		if code, st := withCookie("GET", "/api/v1/session", false); code != 200 {
			t.Fatalf("after %s: session %s, want 200 (logged out by the restart)", how, st)
		}
	}
	if code, st := withCookie("POST", "/api/v1/alarms/"+id+"/ack", true); code != 200 {
		t.Fatalf("ack with the restored session: %s", st)
	}
	if code, _ := withCookie("DELETE", "/api/v1/session", true); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if err := s.term(); err != nil {
		t.Fatal(err)
	}
	s.start()
	if code, _ := withCookie("GET", "/api/v1/session", false); code != 401 {
		t.Errorf("a logged-out session came back after a restart: %d", code)
	}
}
