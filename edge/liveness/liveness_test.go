package liveness_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	_ "github.com/smartcommunity/warden/drivers/gas"
	_ "github.com/smartcommunity/warden/drivers/wristband"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/ingest"
	"github.com/smartcommunity/warden/edge/liveness"
	"github.com/smartcommunity/warden/edge/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var shanghai = time.FixedZone("CST", 8*3600)

func dur(d time.Duration) *config.Duration { c := config.Duration(d); return &c }

func devices() []config.Device {
	return []config.Device{
		{ID: "gas-1", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-1"},
		{ID: "sos-1", Kind: "wristband", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/sos-1",
			Extra: map[string]any{"wearer": "Wang Fang"}},
		{ID: "gas-fast", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-fast", Heartbeat: dur(30 * time.Minute)},
	}
}

// rig is a watcher behind a real ingest router committing to a real store.
type rig struct {
	t      *testing.T
	clk    *clock
	st     *store.Store
	w      *liveness.Watcher
	router *ingest.Router
	dir    string
}

func newRig(t *testing.T, dir string, clk *clock, devs []config.Device, cfg config.Liveness) *rig {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	w, err := liveness.New(liveness.Options{Gateway: "gw", Site: "s", Devices: devs, Config: cfg, Registry: drivers.Default, Sink: st, DB: st.DB(), Now: clk.Now, Location: shanghai, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ingest.New(ingest.Options{Gateway: "gw", Devices: devs, Registry: drivers.Default, Store: st, Actors: []ingest.Actor{w}})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, clk: clk, st: st, w: w, router: r, dir: dir}
}

// send hands a message to the router at the clock's time and waits for its commit.
func (r *rig) send(topic, payload string) {
	r.t.Helper()
	done := make(chan struct{})
	r.router.Handle(ingest.Message{Topic: topic, Payload: []byte(payload), Received: r.clk.Now(), Ack: func() { close(done) }})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.t.Fatal("message not committed")
	}
}

// events lists committed events of the given types for a device.
func (r *rig) events(id string, types ...string) []event.Event {
	r.t.Helper()
	evs, _, err := r.st.Read(0, 1000, store.Filter{SourceID: id})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []event.Event
	for _, e := range evs {
		for _, typ := range types {
			if e.Type == typ {
				out = append(out, e)
			}
		}
	}
	return out
}

func (r *rig) sweep() []*event.Event { return r.w.Sweep(context.Background()) }

func typesOf(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestOfflineOnceOnlineOnce(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, shanghai)}
	r := newRig(t, t.TempDir(), clk, devices(), config.Liveness{})
	r.send("zigbee2mqtt/gas-1", `{"gas":false,"battery":90}`)
	if seen, on := r.w.Status("gas-1"); !on || !seen.Equal(clk.Now()) {
		t.Fatalf("status after a message = %v %v", seen, on)
	}

	clk.Add(2*time.Hour - time.Second)
	r.sweep()
	if got := r.events("gas-1", event.DeviceOffline); len(got) != 0 {
		t.Fatalf("offline before the heartbeat: %v", typesOf(got))
	}
	clk.Add(time.Second)
	raised := r.sweep()
	for range 3 {
		clk.Add(time.Hour)
		raised = append(raised, r.sweep()...)
	}
	off := r.events("gas-1", event.DeviceOffline)
	if len(off) != 1 || off[0].Severity != event.Warning || off[0].Data["by"] != "liveness" {
		t.Fatalf("want one device.offline, got %+v", off)
	}
	if _, on := r.w.Status("gas-1"); on {
		t.Fatal("status still online")
	}
	// gas-fast (30m heartbeat override) and sos-1 (1h) never spoke: offline
	// once each after their own heartbeat counted from start.
	if n := len(r.events("gas-fast", event.DeviceOffline)); n != 1 {
		t.Fatalf("gas-fast offline events = %d", n)
	}
	var gas1 []string
	for _, e := range raised {
		if e.Source.ID == "gas-1" {
			gas1 = append(gas1, e.Type)
		}
	}
	if len(gas1) != 1 || gas1[0] != event.DeviceOffline {
		t.Fatalf("sweeps returned %v for gas-1, want one device.offline", gas1)
	}

	r.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	r.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	on := r.events("gas-1", event.DeviceOnline)
	if len(on) != 1 || on[0].Data["last_seen"] == nil {
		t.Fatalf("want one device.online with last_seen, got %+v", on)
	}
	if _, online := r.w.Status("gas-1"); !online {
		t.Fatal("status not online after a message")
	}
}

func TestAvailabilityNotDuplicated(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, shanghai)}
	r := newRig(t, t.TempDir(), clk, devices(), config.Liveness{})
	// z2m says offline first: the driver's event passes, no timeout later.
	r.send("zigbee2mqtt/gas-1/availability", `{"state":"offline"}`)
	clk.Add(5 * time.Hour)
	r.sweep()
	if got := typesOf(r.events("gas-1", event.DeviceOffline, event.DeviceOnline)); len(got) != 1 || got[0] != event.DeviceOffline {
		t.Fatalf("events = %v, want one device.offline", got)
	}
	// A real message brings it back (liveness says online); z2m's own
	// online afterwards is the same news and is dropped.
	r.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	r.send("zigbee2mqtt/gas-1/availability", `{"state":"online"}`)
	if got := typesOf(r.events("gas-1", event.DeviceOffline, event.DeviceOnline)); len(got) != 2 || got[1] != event.DeviceOnline {
		t.Fatalf("events = %v, want offline, online", got)
	}

	// Timed out first, then z2m also says offline: one event.
	clk.Add(2 * time.Hour)
	r.sweep()
	r.send("zigbee2mqtt/gas-1/availability", `{"state":"offline"}`)
	// z2m online (driver event) brings it back once; a real message after it adds nothing.
	r.send("zigbee2mqtt/gas-1/availability", `{"state":"online"}`)
	r.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	want := []string{event.DeviceOffline, event.DeviceOnline, event.DeviceOffline, event.DeviceOnline}
	got := typesOf(r.events("gas-1", event.DeviceOffline, event.DeviceOnline))
	if len(got) != len(want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
}

func TestWristbandInactiveInsideWindowOncePerEpisode(t *testing.T) {
	// 19:00: last message; the window 07:00-21:00 leaves 2h of daytime.
	clk := &clock{t: time.Date(2026, 11, 25, 19, 0, 0, 0, shanghai)}
	devs := devices()[:2]
	r := newRig(t, t.TempDir(), clk, devs, config.Liveness{Heartbeat: map[string]config.Duration{"wristband": 0}})
	r.send("zigbee2mqtt/sos-1", `{"battery":80}`)
	inactive := func() int { return len(r.events("sos-1", event.WristbandQuiet)) }

	// Through the evening and night: silence outside the window never counts.
	for clk.Now().Before(time.Date(2026, 11, 26, 10, 50, 0, 0, shanghai)) {
		clk.Add(10 * time.Minute)
		r.sweep()
		if inactive() != 0 {
			t.Fatalf("wristband.inactive at %v, before 4h of daytime silence", clk.Now())
		}
	}
	// 11:00 next day: 4h since the window opened at 07:00.
	clk.Add(10 * time.Minute)
	r.sweep()
	if inactive() != 1 {
		t.Fatalf("no wristband.inactive at %v", clk.Now())
	}
	e := r.events("sos-1", event.WristbandQuiet)[0]
	if e.Severity != event.Critical || e.Data["wearer"] != "Wang Fang" || e.Data["active_window"] != "07:00-21:00" {
		t.Fatalf("event = %+v", e)
	}
	for range 10 {
		clk.Add(time.Hour)
		r.sweep()
	}
	if inactive() != 1 {
		t.Fatalf("silence episode raised %d times", inactive())
	}
	// Activity ends the episode; the next silence raises again.
	r.send("zigbee2mqtt/sos-1", `{"battery":79}`) // 21:00, after the window
	clk.Add(14 * time.Hour)                       // 11:00 next day
	r.sweep()
	if inactive() != 2 {
		t.Fatalf("second episode: %d events", inactive())
	}
	// No heartbeat (0s) for wristbands here: never device.offline.
	if n := len(r.events("sos-1", event.DeviceOffline)); n != 0 {
		t.Fatalf("device.offline with heartbeat 0s: %d", n)
	}
}

func TestRestartGraceAndPersistedOffline(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, shanghai)}
	devs := devices()[:1]
	devs = append(devs, config.Device{ID: "gas-2", Kind: "gas_detector", Driver: "zigbee2mqtt", Topic: "zigbee2mqtt/gas-2"})
	r := newRig(t, dir, clk, devs, config.Liveness{})
	r.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	r.send("zigbee2mqtt/gas-2", `{"gas":false}`)
	clk.Add(time.Hour)
	r.send("zigbee2mqtt/gas-2", `{"gas":false}`)
	clk.Add(90 * time.Minute) // gas-1 silent 2h30: offline; gas-2 1h30: fine
	r.sweep()
	if len(r.events("gas-1", event.DeviceOffline)) != 1 || len(r.events("gas-2", event.DeviceOffline)) != 0 {
		t.Fatal("setup: want gas-1 offline only")
	}
	lastSeen2, _ := r.w.Status("gas-2")
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart ten hours later: gas-2's old last_seen is far past its
	// heartbeat, but it gets one full heartbeat of grace; gas-1 stays
	// offline without a second event.
	clk.Add(10 * time.Hour)
	r2 := newRig(t, dir, clk, devs, config.Liveness{})
	if seen, on := r2.w.Status("gas-2"); !on || !seen.Equal(lastSeen2) {
		t.Fatalf("gas-2 after restart: %v %v, want online, last seen %v", seen, on, lastSeen2)
	}
	if _, on := r2.w.Status("gas-1"); on {
		t.Fatal("gas-1 online after restart")
	}
	r2.sweep()
	clk.Add(2*time.Hour - time.Minute)
	r2.sweep()
	if n := len(r2.events("gas-2", event.DeviceOffline)); n != 0 {
		t.Fatalf("gas-2 offline inside the restart grace (%d events)", n)
	}
	if n := len(r2.events("gas-1", event.DeviceOffline)); n != 1 {
		t.Fatalf("gas-1 offline events after restart = %d, want still 1", n)
	}
	clk.Add(time.Minute)
	r2.sweep()
	if n := len(r2.events("gas-2", event.DeviceOffline)); n != 1 {
		t.Fatalf("gas-2 offline after the grace: %d events", n)
	}
	r2.send("zigbee2mqtt/gas-1", `{"gas":false}`)
	if n := len(r2.events("gas-1", event.DeviceOnline)); n != 1 {
		t.Fatalf("gas-1 online events = %d", n)
	}
}

func TestCheck(t *testing.T) {
	c := &config.Config{
		Liveness: config.Liveness{Heartbeat: map[string]config.Duration{"toaster": config.Duration(time.Hour)}},
		Devices:  []config.Device{{ID: "gas-1", Kind: "gas_detector", InactiveAfter: dur(time.Hour)}},
	}
	ps := liveness.Check(c)
	if len(ps) != 2 {
		t.Fatalf("problems = %v", ps)
	}
	if _, err := liveness.New(liveness.Options{Devices: c.Devices}); err == nil {
		t.Fatal("New accepted inactive_after on a gas detector")
	}
}
