package notify_test

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/notify"
	_ "github.com/smartcommunity/warden/edge/notify/all" // every target kind
	"github.com/smartcommunity/warden/edge/notify/notifytest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a real store and alarm manager with a notifier on the change
// callback, as the gateway wires them.
type env struct {
	st     *store.Store
	alarms *alarm.Manager
	n      *notify.Notifier
	reg    *prometheus.Registry
	stop   func()
}

func newEnv(t *testing.T, dir string, cfg config.Notify, devices []config.Device) *env {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, reg: prometheus.NewRegistry()}
	e.alarms, err = alarm.New(alarm.Options{DB: st.DB(), Gateway: "gw", Site: "site", EscalateAfter: time.Hour, Sink: st, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.n, err = notify.New(notify.Options{Config: cfg, Devices: devices, EscalateAfter: 2 * time.Minute, DB: st.DB(), Timeline: e.alarms,
		Media: st, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet(), Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	e.alarms.AddNotify(e.n.Observe)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.n.Run(ctx) })
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			st.Close()
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *env) raise(t *testing.T, typ, src, kind string, loc event.Location, media ...event.Media) *alarm.Alarm {
	t.Helper()
	ev := eventtest.New(typ, eventtest.Gateway("gw", "site"), eventtest.Source(kind, src), eventtest.Location(loc))
	ev.Media = media
	if err := e.st.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	a, opened, err := e.alarms.Observe(context.Background(), *ev)
	if err != nil || !opened {
		t.Fatalf("observe %s: opened %v err %v", typ, opened, err)
	}
	return a
}

func timelineOf(t *testing.T, e *env, id string) []alarm.Entry {
	t.Helper()
	a, err := e.alarms.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Timeline
}

func notes(es []alarm.Entry, action string) []string {
	var out []string
	for _, x := range es {
		if x.Action == action {
			out = append(out, x.Note)
		}
	}
	return out
}

func jpegBytes(t *testing.T) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Routes pick targets by type, place, priority and device; every vendor
// gets its documented shape; each delivery is on the alarm's timeline.
func TestRoutesReachEachVendor(t *testing.T) {
	wc, dt, wh, sms := notifytest.NewWeCom(t), notifytest.NewDingTalk(t), notifytest.NewWebhook(t), notifytest.NewSMS(t)
	cfg := config.Notify{
		ConsoleURL: "http://192.168.10.2:8080/",
		Targets: []config.NotifyTarget{
			{Name: "guard-room", Kind: "wecom", URL: wc.URL("/cgi-bin/webhook/send?key=" + notifytest.WeComKey), Mentions: []string{"13800000000"}},
			{Name: "grid-5", Kind: "dingtalk", URL: dt.URL("/robot/send?access_token=tok"), Secret: notifytest.DingSecret, Mentions: []string{"13900000000"}},
			{Name: "family-5-2-301", Kind: "webhook", URL: wh.URL("/hook"), Secret: notifytest.HookSecret},
			{Name: "duty-sms", Kind: "sms_http", URL: sms.URL("/sms"), To: []string{"13700000001", "13700000002"},
				Body: `{"phone":"{{.To}}","text":{{json .Text}}}`},
		},
		Routes: []config.NotifyRoute{
			{Types: []string{"gas.leak", "wristband.sos"}, Targets: []string{"guard-room"}},
			{Types: []string{"gas.*"}, Buildings: []string{"5"}, Targets: []string{"grid-5"}},
			{Priorities: []int{1}, Targets: []string{"duty-sms"}},
		},
	}
	devices := []config.Device{{ID: "sos-5-2-301", Notify: []string{"family-5-2-301"}}}
	e := newEnv(t, t.TempDir(), cfg, devices)
	mi, err := e.st.PutMedia("snapshot", "image/jpeg", jpegBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	leak := e.raise(t, event.GasLeak, "gas-5-1-102", "gas_detector", event.Location{Building: "5", Unit: "1", Room: "102"},
		event.Media{Kind: "snapshot", URL: "/api/v1/media/" + mi.ID})
	sos := e.raise(t, event.WristbandSOS, "sos-5-2-301", "wristband", event.Location{Building: "5", Unit: "2", Room: "301"})
	gate := e.raise(t, event.GateDenied, "gate-north", "barrier_gate", event.Location{Zone: "north-gate"})

	// leak: wecom (markdown, @text, image), dingtalk, 2 sms; sos: wecom (markdown, @text), webhook, 2 sms.
	testenv.Until(t, 20*time.Second, "all deliveries", func() bool {
		return len(wc.Messages()) == 5 && len(dt.Messages()) == 1 && len(wh.Messages()) == 1 && len(sms.Messages()) == 4
	})
	time.Sleep(200 * time.Millisecond) // anything extra (the routine gate alarm) would arrive now
	for _, f := range []*notifytest.Fake{wc, dt, wh, sms} {
		f.Check(t)
	}
	if n := len(wc.Messages()) + len(dt.Messages()) + len(wh.Messages()) + len(sms.Messages()); n != 11 {
		t.Errorf("%d requests in all, want 11: the routine gate.denied matched no route", n)
	}

	md := wc.Messages()[0].Body["markdown"].(map[string]any)["content"].(string)
	for _, want := range []string{"【生命安全】燃气泄漏", "5 号楼 1 单元 102 室", "燃气探测器 gas-5-1-102", "未处理",
		"[在值班台查看](http://192.168.10.2:8080/#alarm=" + leak.ID + ")", "/api/v1/media/" + mi.ID} {
		if !strings.Contains(md, want) {
			t.Errorf("wecom markdown lacks %q:\n%s", want, md)
		}
	}
	kinds := []string{}
	for _, m := range wc.Messages() {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "markdown,text,image,markdown,text" {
		t.Errorf("wecom messages %v, want the leak's markdown, @text, picture, then the SOS's markdown, @text", kinds)
	}
	if ml := wc.Messages()[1].Body["text"].(map[string]any)["mentioned_mobile_list"]; ml == nil {
		t.Errorf("wecom @ text without mentioned_mobile_list")
	}
	dtext := dt.Messages()[0].Body["markdown"].(map[string]any)["text"].(string)
	if !strings.Contains(dtext, "燃气泄漏") || !strings.Contains(dtext, "@13900000000") {
		t.Errorf("dingtalk text %q", dtext)
	}
	hook := wh.Messages()[0].Body
	if hook["action"] != "opened" || hook["priority"] != float64(1) || hook["alarm"].(map[string]any)["id"] != sos.ID {
		t.Errorf("webhook body %v", hook)
	}
	phones := map[string]bool{}
	for _, m := range sms.Messages() {
		phones[m.Body["phone"].(string)] = true
		if !strings.Contains(m.Body["text"].(string), "生命安全") {
			t.Errorf("sms text %q", m.Body["text"])
		}
	}
	if len(phones) != 2 {
		t.Errorf("sms numbers %v", phones)
	}

	testenv.Until(t, 20*time.Second, "timeline entries", func() bool {
		return len(notes(timelineOf(t, e, leak.ID), alarm.ActNotified)) == 3 && len(notes(timelineOf(t, e, sos.ID), alarm.ActNotified)) == 3
	})
	if got := strings.Join(notes(timelineOf(t, e, sos.ID), alarm.ActNotified), ","); !strings.Contains(got, "family-5-2-301") {
		t.Errorf("sos timeline notified %s", got)
	}
	if n := len(notes(timelineOf(t, e, gate.ID), alarm.ActNotified)); n != 0 {
		t.Errorf("routine gate alarm notified %d times", n)
	}
	if v := testenv.MetricValue(t, e.reg, "warden_notify_sent_total", map[string]string{"target": "duty-sms"}); v != 2 {
		t.Errorf("sent{duty-sms} = %v, want 2 (one message each for leak and sos)", v)
	}
}

// A target that fails is retried with backoff; the failure and the late
// delivery are on the timeline. A message queued when the gateway stops is
// sent by the next start.
func TestRetryAndRestart(t *testing.T) {
	wc := notifytest.NewWeCom(t)
	cfg := config.Notify{
		Targets: []config.NotifyTarget{{Name: "guard-room", Kind: "wecom", URL: wc.URL("/cgi-bin/webhook/send?key=" + notifytest.WeComKey)}},
		Routes:  []config.NotifyRoute{{Targets: []string{"guard-room"}}},
	}
	dir := t.TempDir()
	e := newEnv(t, dir, cfg, nil)
	wc.SetFail(2, 0)
	a := e.raise(t, event.GasLeak, "gas-1", "gas_detector", event.Location{Building: "3"})
	testenv.Until(t, 20*time.Second, "delivery after two failures", func() bool { return len(wc.Messages()) == 1 })
	testenv.Until(t, 20*time.Second, "timeline", func() bool { return len(notes(timelineOf(t, e, a.ID), alarm.ActNotified)) == 1 })
	tl := timelineOf(t, e, a.ID)
	if f := notes(tl, alarm.ActNotifyFailed); len(f) != 1 || !strings.Contains(f[0], "503") {
		t.Errorf("failed entries %v", f)
	}
	if s := notes(tl, alarm.ActNotified); s[0] != "guard-room (3)" {
		t.Errorf("notified entry %q, want the try count", s[0])
	}
	if v := testenv.MetricValue(t, e.reg, "warden_notify_failed_total", map[string]string{"target": "guard-room"}); v != 2 {
		t.Errorf("failed = %v", v)
	}

	// The robot refuses everything (an errcode that retrying may fix once
	// the installer corrects the key: retried for life safety).
	wc.SetFail(1000000, 0)
	b := e.raise(t, event.WristbandSOS, "band-1", "wristband", event.Location{Building: "3"})
	testenv.Until(t, 20*time.Second, "first failure recorded", func() bool { return len(notes(timelineOf(t, e, b.ID), alarm.ActNotifyFailed)) >= 1 })
	e.stop()

	wc.SetFail(0, 0)
	e2 := newEnv(t, dir, cfg, nil)
	testenv.Until(t, 20*time.Second, "queued message sent after restart", func() bool { return len(wc.Messages()) == 2 })
	got := wc.Messages()[1].Body["markdown"].(map[string]any)["content"].(string)
	if !strings.Contains(got, "手环求救") {
		t.Errorf("after restart sent %q", got)
	}
	testenv.Until(t, 20*time.Second, "timeline after restart", func() bool { return len(notes(timelineOf(t, e2, b.ID), alarm.ActNotified)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(wc.Messages()); n != 2 {
		t.Errorf("%d messages: the restart sent something twice", n)
	}
	if err := e2.st.DB().View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(notify.QueueBucket).Stats().KeyN; n != 0 {
			t.Errorf("%d messages left in the queue file", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Over a target's rate, routine messages are skipped (counted, on the
// timeline) and life-safety ones wait for their turn: none is lost.
func TestRateLimitNeverDropsLifeSafety(t *testing.T) {
	wh := notifytest.NewWebhook(t)
	cfg := config.Notify{
		Targets: []config.NotifyTarget{{Name: "hook", Kind: "webhook", URL: wh.URL("/hook"), Secret: notifytest.HookSecret}},
		Routes:  []config.NotifyRoute{{Targets: []string{"hook"}}},
	}
	e := newEnv(t, t.TempDir(), cfg, nil)
	e.n.SetLimiter("hook", rate.NewLimiter(rate.Every(300*time.Millisecond), 1))
	var routine, life []*alarm.Alarm
	for i := range 4 {
		routine = append(routine, e.raise(t, event.GateDenied, "gate-"+string(rune('a'+i)), "barrier_gate", event.Location{Zone: "north"}))
	}
	for i := range 3 {
		life = append(life, e.raise(t, event.GasLeak, "gas-"+string(rune('a'+i)), "gas_detector", event.Location{Building: "1"}))
	}
	testenv.Until(t, 20*time.Second, "every life-safety message", func() bool {
		n := 0
		for _, m := range wh.Messages() {
			if m.Body["priority"] == float64(1) {
				n++
			}
		}
		return n == 3
	})
	wh.Check(t)
	skipped := testenv.MetricValue(t, e.reg, "warden_notify_skipped_total", map[string]string{"target": "hook", "reason": "rate"})
	sentRoutine := len(wh.Messages()) - 3
	if skipped < 1 || int(skipped)+sentRoutine != 4 {
		t.Errorf("routine: %d sent, %v skipped for rate; want 4 in all with some skipped", sentRoutine, skipped)
	}
	// The timeline entry follows the target's answer.
	testenv.Until(t, 20*time.Second, "each life-safety alarm notified once on its timeline", func() bool {
		for _, a := range life {
			if len(notes(timelineOf(t, e, a.ID), alarm.ActNotified)) != 1 {
				return false
			}
		}
		return true
	})
	testenv.Until(t, 20*time.Second, "skip on a routine timeline", func() bool {
		for _, a := range routine {
			if s := notes(timelineOf(t, e, a.ID), alarm.ActNotifySkip); len(s) == 1 && s[0] == "hook: rate" {
				return true
			}
		}
		return false
	})
}

// A database that refuses the queue write does not stop the message.
func TestQueueStoreFailureStillSends(t *testing.T) {
	wc := notifytest.NewWeCom(t)
	reg := prometheus.NewRegistry()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "q.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Options{Config: config.Notify{
		Targets: []config.NotifyTarget{{Name: "guard-room", Kind: "wecom", URL: wc.URL("/cgi-bin/webhook/send?key=" + notifytest.WeComKey)}},
		Routes:  []config.NotifyRoute{{Targets: []string{"guard-room"}}},
	}, DB: db, Logger: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = n.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	n.Observe(alarm.Change{Action: alarm.ActOpened, Alarm: alarm.Alarm{ID: "a1", Type: event.GasLeak, Priority: 1, State: alarm.Open,
		Source: event.Source{Kind: "gas_detector", ID: "gas-1"}, OpenedAt: time.Now()}})
	testenv.Until(t, 20*time.Second, "sent from memory", func() bool { return len(wc.Messages()) == 1 })
	if v := testenv.MetricValue(t, reg, "warden_notify_store_errors_total", nil); v < 1 {
		t.Errorf("store errors = %v", v)
	}
}

// A target that refuses (400, a wrong key) gives up a routine message at
// once, but keeps retrying a life-safety one until someone fixes it.
func TestRefusedRoutineGivenUpLifeSafetyRetried(t *testing.T) {
	var mu sync.Mutex
	refuse, got := true, 0
	srv := notifytest.New(t, func(*notifytest.Fake) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if refuse {
				http.Error(w, "bad token", http.StatusBadRequest)
				return
			}
			got++
			w.WriteHeader(http.StatusNoContent)
		}
	})
	cfg := config.Notify{
		Targets: []config.NotifyTarget{{Name: "hook", Kind: "webhook", URL: srv.URL("/hook")}},
		Routes:  []config.NotifyRoute{{Targets: []string{"hook"}}},
	}
	e := newEnv(t, t.TempDir(), cfg, nil)
	routine := e.raise(t, event.GateDenied, "gate-1", "barrier_gate", event.Location{Zone: "north"})
	testenv.Until(t, 20*time.Second, "the routine message given up", func() bool {
		s := notes(timelineOf(t, e, routine.ID), alarm.ActNotifySkip)
		return len(s) == 1 && s[0] == "hook: refused"
	})
	life := e.raise(t, event.GasLeak, "gas-1", "gas_detector", event.Location{Building: "1"})
	testenv.Until(t, 20*time.Second, "life safety failing and retried", func() bool {
		return testenv.MetricValue(t, e.reg, "warden_notify_failed_total", map[string]string{"target": "hook"}) >= 3
	})
	mu.Lock()
	refuse = false // the installer fixed the token
	mu.Unlock()
	testenv.Until(t, 20*time.Second, "life safety delivered", func() bool { return len(notes(timelineOf(t, e, life.ID), alarm.ActNotified)) == 1 })
	if f := notes(timelineOf(t, e, life.ID), alarm.ActNotifyFailed); len(f) == 0 || !strings.Contains(f[0], "HTTP 400") {
		t.Errorf("failure on the timeline: %v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 1 {
		t.Errorf("webhook accepted %d messages, want the gas leak only", got)
	}
}

// Every kind check-config accepts is linked in (edge/notify/all), and a
// kind no package registers fails New instead of sending nothing.
func TestKindsMatchConfig(t *testing.T) {
	want := slices.Sorted(slices.Values(config.NotifyKinds))
	if got := notify.Kinds(); !slices.Equal(got, want) {
		t.Fatalf("registered kinds %v, config.NotifyKinds %v", got, want)
	}
	_, err := notify.New(notify.Options{Logger: quiet(), Config: config.Notify{
		Targets: []config.NotifyTarget{{Name: "x", Kind: "pager", URL: "http://127.0.0.1:1/"}}}})
	if err == nil || !strings.Contains(err.Error(), `kind "pager" is not linked`) {
		t.Fatalf("New with an unlinked kind = %v", err)
	}
}
