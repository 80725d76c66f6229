package config

import (
	"strings"
	"testing"
	"time"
)

// config.Window is schedule.Window with "not set" and YAML: gate hours,
// notify routes and wristband activity read it.
func TestWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 28, h, m, 0, 0, time.UTC) } // a Saturday
	var unset Window
	if unset.IsSet() || !unset.Contains(at(3, 0)) || !unset.Start(at(3, 0)).Equal(at(0, 0)) || unset.String() != "" {
		t.Error("an unset window contains every time and starts at midnight")
	}
	w, err := ParseWindow("22:00-06:00")
	if err != nil || !w.Contains(at(23, 0)) || !w.Contains(at(5, 59)) || w.Contains(at(6, 0)) || w.String() != "22:00-06:00" {
		t.Errorf("22:00-06:00: %v %v", w, err)
	}
	if w, err := ParseWindow("sat,sun 09:00-18:00"); err != nil || !w.Contains(at(10, 0)) || w.Contains(at(10, 0).AddDate(0, 0, -1)) {
		t.Errorf("sat,sun 09:00-18:00: %v %v", w, err)
	}
	for _, bad := range []string{"", "07:00", "7-8", "25:00-26:00", "08:00-08:00", "24:00-06:00", "someday 07:00-08:00"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err = Parse("w.yaml", []byte("gateway: {id: gw, data_dir: /tmp/x}\nnotify:\n  targets: [{name: desk, kind: webhook, url: \"http://127.0.0.1:1/\"}]\n  routes:\n    - targets: [desk]\n      hours: \"07:00-30:00\"\n"))
	if err == nil || !strings.Contains(err.Error(), "w.yaml:6") || !strings.Contains(err.Error(), "hours") || !strings.Contains(err.Error(), "07:00-30:00") {
		t.Errorf("a bad window in the config: %v", err)
	}
}
