package notify

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/i18n"
)

func TestRouteMatching(t *testing.T) {
	night, err := config.ParseWindow("22:00-06:00")
	if err != nil {
		t.Fatal(err)
	}
	r := newRoute(config.NotifyRoute{Types: []string{"gas.*", "wristband.sos"}, Priorities: []int{1}, Buildings: []string{"5"},
		Hours: night, Targets: []string{"x"}})
	a := &alarm.Alarm{Type: "gas.leak", Priority: 1, Location: event.Location{Building: "5"}}
	at := func(h int) time.Time { return time.Date(2026, 12, 5, h, 0, 0, 0, time.Local) }
	if !r.match(a, alarm.ActOpened, at(23)) || !r.match(a, alarm.ActEscalated, at(3)) {
		t.Error("gas leak in building 5 at night should match, opened and escalated")
	}
	for name, c := range map[string]struct {
		a      alarm.Alarm
		action string
		h      int
	}{
		"daytime":      {*a, alarm.ActOpened, 12},
		"acknowledged": {*a, alarm.ActAcknowledged, 23},
		"building 3":   {alarm.Alarm{Type: "gas.leak", Priority: 1, Location: event.Location{Building: "3"}}, alarm.ActOpened, 23},
		"type":         {alarm.Alarm{Type: "wristband.fall", Priority: 1, Location: event.Location{Building: "5"}}, alarm.ActOpened, 23},
		"priority":     {alarm.Alarm{Type: "gas.cleared", Priority: 3, Location: event.Location{Building: "5"}}, alarm.ActOpened, 23},
	} {
		if r.match(&c.a, c.action, at(c.h)) {
			t.Errorf("%s: matched", name)
		}
	}
}

func TestMessageLanguage(t *testing.T) {
	a := &alarm.Alarm{ID: "a1", Type: event.GasLeak, Priority: 1, State: alarm.Open, Count: 1, OpenedAt: time.Now(),
		Location: event.Location{Building: "5", Unit: "1", Room: "102"}, Source: event.Source{Kind: "gas_detector", ID: "gas-5-1-102"}}
	cam := &alarm.Alarm{ID: "a2", Type: event.FaceUnknown, Priority: 3, State: alarm.Open, Count: 1, OpenedAt: time.Now(),
		Location: event.Location{Zone: "main-gate"}, Source: event.Source{Kind: "camera", ID: "entrance"}}
	places := i18n.Places{Zones: map[string]string{"main-gate": "正门"}, Sources: map[string]string{"entrance": "正门人脸"}}
	for lang, want := range map[string][]string{
		"":   {"### 【生命安全】燃气泄漏", "> 位置：**5 号楼 1 单元 102 室**", "> 状态：未处理", "> 来源：燃气探测器 gas-5-1-102\n"},
		"en": {"### [Life safety] Gas leak", "> Where: **Bldg 5 Unit 1 Room 102**", "> State: Open", "Gas detector gas-5-1-102\n"},
	} {
		n, err := New(Options{Lang: lang, Places: places, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		m := n.render(a, alarm.ActOpened)
		for _, w := range want {
			if !strings.Contains(m.Markdown, w) {
				t.Errorf("lang %q: markdown lacks %q:\n%s", lang, w, m.Markdown)
			}
		}
		// a camera by the name guards know it, and its id
		w := map[string]string{"": "> 来源：摄像头 正门人脸（entrance）\n", "en": "> Source: Camera 正门人脸 (entrance)\n"}[lang]
		if m := n.render(cam, alarm.ActOpened); !strings.Contains(m.Markdown, w) {
			t.Errorf("lang %q: markdown lacks %q:\n%s", lang, w, m.Markdown)
		}
	}
}
