package alarm_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/event"
)

// A manager fed a page at a time (as the follow loop does) ends in the same
// state, records the same alarm.* events and notifies the same changes in
// the same order as one fed one event at a time.
func TestBatchEqualsOneByOne(t *testing.T) {
	clock := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	opts := func(o *alarm.Options) { o.EscalateAfter = time.Minute }
	one, all := newEnv(t, "", opts), newEnv(t, "", opts)
	one.m.SetClock(now)
	all.m.SetClock(now)

	feed := func(evs ...*event.Event) {
		t.Helper()
		a, b := make([]*event.Event, len(evs)), make([]*event.Event, len(evs))
		for i, ev := range evs {
			x, y := *ev, *ev
			a[i], b[i] = &x, &y
		}
		for _, ev := range one.commit(t, a...) {
			if _, _, err := one.m.Observe(bg, *ev); err != nil {
				t.Fatal(err)
			}
		}
		page := make([]event.Event, len(b))
		for i, ev := range all.commit(t, b...) {
			page[i] = *ev
		}
		if err := all.m.ObserveAll(bg, page); err != nil {
			t.Fatal(err)
		}
	}
	both := func(f func(e *env)) { f(one); f(all) }
	idOf := func(e *env, key string) string {
		l, _ := e.m.List("", "", 1000)
		for _, a := range l {
			if a.Key == key && a.State != alarm.Resolved {
				return a.ID
			}
		}
		t.Fatalf("no active alarm %s", key)
		return ""
	}
	rep := func(n int, typ, src string, sev event.Severity) []*event.Event {
		var out []*event.Event
		for range n {
			out = append(out, mk(typ, src, sev))
		}
		return out
	}

	// New alarms, repeats, a worse repeat, clears, a relapse, no-alarm events.
	feed(slices.Concat(
		rep(4, event.GasLeak, "g1", ""),
		rep(1, event.MotionDetected, "cam", ""),
		rep(1, event.PerimeterIntr, "p1", event.Warning),
		rep(1, event.PerimeterIntr, "p1", event.Critical), // rose: notified
		rep(1, event.GasCleared, "g1", ""),
		rep(1, event.GasLeak, "g1", ""), // relapse resets cleared_at
		rep(1, event.CameraOffline, "c1", ""),
		rep(1, event.DeviceOffline, "d1", ""),
		rep(1, event.DeviceOnline, "d1", ""),
		rep(1, event.GasCleared, "g2", ""), // clears nothing
		rep(1, event.WristbandBatt, "w1", ""),
	)...)
	both(func(e *env) {
		if _, err := e.m.Ack(bg, idOf(e, "wristband.low_battery/w1"), "guard", "seen"); err != nil {
			t.Fatal(err)
		}
	})
	clock = clock.Add(2 * time.Minute)
	both(func(e *env) { e.m.EscalateDue(bg) })

	// Repeats of escalated and acknowledged alarms, an alarm opened and
	// cleared in the same page, a clear of an escalated one.
	clock = clock.Add(time.Second)
	feed(slices.Concat(
		rep(1, event.CameraOffline, "c1", ""), // warning after escalation to critical: no news
		rep(2, event.PerimeterIntr, "p1", ""),
		rep(1, event.GasLeak, "g3", ""),
		rep(1, event.GasCleared, "g3", ""),
		rep(1, event.CameraOnline, "c1", ""),
		rep(1, event.WristbandBatt, "w1", event.Critical), // worse, while acknowledged
		rep(5, event.GasLeak, "g1", ""),
	)...)
	clock = clock.Add(2 * time.Minute)
	both(func(e *env) { e.m.EscalateDue(bg) })
	both(func(e *env) {
		if _, err := e.m.Resolve(bg, idOf(e, "gas.leak/g1"), "guard", "valve closed"); err != nil {
			t.Fatal(err)
		}
	})

	// More than one batch: the condition comes back after resolve, and a
	// long run of repeats and noise crosses the batch bound.
	clock = clock.Add(time.Second)
	var long []*event.Event
	for i := range alarm.MaxBatchEvents + 200 {
		switch i % 4 {
		case 0:
			long = append(long, mk(event.GasLeak, "g1", ""))
		case 1:
			long = append(long, mk(event.MotionDetected, "cam", ""))
		case 2:
			long = append(long, mk(event.PerimeterIntr, "p1", ""))
		default:
			long = append(long, mk(event.DeviceOffline, fmt.Sprintf("d%d", i%40), ""))
		}
	}
	feed(long...)

	a, b := snapshot(t, one), snapshot(t, all)
	for _, part := range []struct {
		name string
		x, y []string
	}{{"notifications", a.changes, b.changes}, {"alarms", a.alarms, b.alarms}, {"alarm events", a.events, b.events}, {"metrics", a.metrics, b.metrics}} {
		if len(part.x) != len(part.y) {
			t.Errorf("%s: %d one by one, %d batched", part.name, len(part.x), len(part.y))
		}
		for i := range min(len(part.x), len(part.y)) {
			if part.x[i] != part.y[i] {
				t.Errorf("%s[%d]:\none by one: %s\nbatched:    %s", part.name, i, part.x[i], part.y[i])
				break
			}
		}
	}
	// The scenario covered what it claims to.
	var acts []string
	for _, c := range all.recorded() {
		acts = append(acts, c.Action)
		if c.Event != nil && c.Event.Seq == 0 {
			t.Errorf("%s of %s notified before its event was recorded", c.Action, c.Alarm.Key)
		}
	}
	for _, want := range []string{"opened", "repeated", "cleared", "acknowledged", "escalated", "resolved"} {
		if !slices.Contains(acts, want) {
			t.Errorf("no %q change in %v", want, acts)
		}
	}
	g1 := findAlarm(t, all, "gas.leak/g1", alarm.Open)
	if g1.Count != (alarm.MaxBatchEvents+200)/4 {
		t.Errorf("g1 after resolve: count %d, want %d", g1.Count, (alarm.MaxBatchEvents+200)/4)
	}
	p1 := findAlarm(t, all, "perimeter.intrusion/p1", "")
	if p1.Count != 4+(alarm.MaxBatchEvents+200)/4 || p1.Severity != event.Critical {
		t.Errorf("p1: count %d severity %s", p1.Count, p1.Severity)
	}
}

func findAlarm(t *testing.T, e *env, key string, state alarm.State) alarm.Alarm {
	t.Helper()
	l, err := e.m.List(state, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range l {
		if a.Key == key {
			return a
		}
	}
	t.Fatalf("no %s alarm %s", state, key)
	return alarm.Alarm{}
}

type state struct{ changes, alarms, events, metrics []string }

// snapshot renders what a manager did with alarm ids replaced by their
// opening order, so two managers can be compared line by line.
func snapshot(t *testing.T, e *env) state {
	t.Helper()
	var s state
	ids := map[string]string{}
	for _, c := range e.recorded() {
		if c.Action == alarm.ActOpened {
			ids[c.Alarm.ID] = fmt.Sprintf("A%d", len(ids))
		}
	}
	norm := func(a alarm.Alarm) string {
		a.ID = ids[a.ID]
		js, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return string(js)
	}
	normEvent := func(ev *event.Event) string {
		d := maps.Clone(ev.Data)
		d["alarm_id"] = ids[fmt.Sprint(d["alarm_id"])]
		js, _ := json.Marshal(d)
		return fmt.Sprintf("%s %s seq %d %s", ev.Type, ev.Severity, ev.Seq, js)
	}
	for _, c := range e.recorded() {
		line := c.Action + " " + norm(c.Alarm)
		if c.Event != nil {
			line += " → " + normEvent(c.Event)
		}
		s.changes = append(s.changes, line)
	}
	l, err := e.m.List("", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range l {
		full, err := e.m.Get(x.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.alarms = append(s.alarms, norm(*full))
	}
	slices.Sort(s.alarms)
	for _, ev := range e.storedOf(t, "alarm.") {
		s.events = append(s.events, normEvent(&ev))
	}
	for _, st := range []string{"open", "acknowledged", "resolved"} {
		s.metrics = append(s.metrics, fmt.Sprintf("alarms %s %v", st, metric(t, e.reg, "warden_alarms", map[string]string{"state": st})))
	}
	for _, to := range []string{"open", "acknowledged", "resolved", "escalated"} {
		s.metrics = append(s.metrics, fmt.Sprintf("transitions %s %v", to, metric(t, e.reg, "warden_alarm_transitions_total", map[string]string{"to": to})))
	}
	s.metrics = append(s.metrics, fmt.Sprintf("escalations %v cursor %d", metric(t, e.reg, "warden_alarm_escalations_total", nil), e.m.Cursor()))
	return s
}

// A batch whose transaction fails leaves nothing behind: no notification,
// no cursor move, no change in memory; after a reopen the same page is
// observed again and counted once.
func TestFailedBatchKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, nil)
	a := e.observe(t, mk(event.GasLeak, "g1", ""))
	var page []event.Event
	for _, ev := range e.commit(t, mk(event.GasLeak, "g1", ""), mk(event.PerimeterIntr, "p1", ""), mk(event.GasCleared, "g1", ""), mk(event.GasLeak, "g1", "")) {
		page = append(page, *ev)
	}
	cursor, notified := e.m.Cursor(), len(e.recorded())
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.m.ObserveAll(bg, page); err == nil {
		t.Fatal("batch on a closed database succeeded")
	}
	if e.m.Cursor() != cursor || len(e.recorded()) != notified {
		t.Errorf("failed batch moved the cursor to %d (was %d) or notified %d changes", e.m.Cursor(), cursor, len(e.recorded())-notified)
	}
	// The in-memory alarm is as committed: a Raise on the closed file fails
	// too, and does not see the failed batch's repeats.
	if _, err := e.m.Raise(bg, page[0], "", ""); err == nil {
		t.Error("raise on a closed database succeeded")
	}

	e2 := newEnv(t, dir, nil)
	if e2.m.Cursor() != cursor {
		t.Fatalf("cursor after reopen %d, want %d", e2.m.Cursor(), cursor)
	}
	if err := e2.m.ObserveAll(bg, page); err != nil {
		t.Fatal(err)
	}
	g, err := e2.m.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	// repeated, cleared, repeated: the second repeat is folded into the
	// first (a flapping condition does not grow the timeline).
	if g.Count != 3 || g.ClearedAt != nil || !slices.Equal(actions(g.Timeline), []string{"opened", "repeated", "cleared"}) || g.Timeline[1].Repeats != 2 {
		t.Errorf("after replay: count %d cleared %v timeline %v", g.Count, g.ClearedAt, g.Timeline)
	}
	var acts []string
	for _, c := range e2.recorded() {
		acts = append(acts, c.Action+" "+c.Alarm.Key)
	}
	if want := []string{"opened perimeter.intrusion/p1", "cleared gas.leak/g1"}; !slices.Equal(acts, want) {
		t.Errorf("notified %v, want %v", acts, want)
	}
	if e2.m.Cursor() != page[len(page)-1].Seq {
		t.Errorf("cursor %d, want %d", e2.m.Cursor(), page[len(page)-1].Seq)
	}
}
