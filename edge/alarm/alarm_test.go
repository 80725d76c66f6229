package alarm_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/event"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

var bg = context.Background()

func TestDedupOneAlarmPerCondition(t *testing.T) {
	e := newEnv(t, "", nil)
	var evs []*event.Event
	for range 100 {
		evs = append(evs, mk(event.GasLeak, "gas-3-2-201", ""))
	}
	a := e.observe(t, evs...)
	if a == nil {
		t.Fatal("no alarm")
	}
	list, err := e.m.List(alarm.Open, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("open alarms = %d, want 1", len(list))
	}
	got := list[0]
	if got.Count != 100 || got.Key != "gas.leak/gas-3-2-201" || got.Type != event.GasLeak || got.Severity != event.Critical {
		t.Errorf("alarm = count %d key %q type %q sev %q", got.Count, got.Key, got.Type, got.Severity)
	}
	if got.FirstEventID != evs[0].ID || got.LastEventID != evs[99].ID || got.LastSeq != evs[99].Seq {
		t.Errorf("first/last = %s/%s seq %d, want %s/%s seq %d", got.FirstEventID, got.LastEventID, got.LastSeq, evs[0].ID, evs[99].ID, evs[99].Seq)
	}
	if got.Title != "燃气泄漏 · 3 号楼 2 单元 201 室（gas-3-2-201）" || got.Location.Room != "201" {
		t.Errorf("title %q location %+v", got.Title, got.Location)
	}
	full, err := e.m.Get(got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if acts := actions(full.Timeline); !slices.Equal(acts, []string{"opened", "repeated"}) || full.Timeline[1].Repeats != 99 {
		t.Errorf("timeline = %v (repeats %d), want opened + one coalesced repeated ×99", acts, full.Timeline[len(full.Timeline)-1].Repeats)
	}
	if n := len(e.storedOf(t, event.AlarmOpened)); n != 1 {
		t.Errorf("alarm.opened events = %d, want 1", n)
	}
	if ch := e.recorded(); len(ch) != 1 || ch[0].Action != alarm.ActOpened {
		t.Errorf("notifications = %d, want 1 (opened): repeats are not news", len(ch))
	}
	// Another detector is another condition.
	e.observe(t, mk(event.GasLeak, "gas-3-2-202", ""))
	if list, _ := e.m.List(alarm.Open, "", 0); len(list) != 2 {
		t.Errorf("open alarms = %d, want 2", len(list))
	}
}

func TestLifecycleTimelineEventsAndNotify(t *testing.T) {
	e := newEnv(t, "", nil)
	a := e.observe(t, mk(event.WristbandSOS, "sos-5-2-301", ""))
	if a.State != alarm.Open || a.Acknowledged != nil || a.Resolved != nil {
		t.Fatalf("new alarm = %+v", a)
	}
	acked, err := e.m.Ack(bg, a.ID, "guard-desk", "on my way")
	if err != nil {
		t.Fatal(err)
	}
	if acked.State != alarm.Acknowledged || acked.Acknowledged == nil || acked.Acknowledged.By != "guard-desk" || acked.Acknowledged.Note != "on my way" || acked.Acknowledged.At.IsZero() {
		t.Fatalf("acked = %+v / %+v", acked, acked.Acknowledged)
	}
	// A repeat while acknowledged is counted on the same alarm.
	if r := e.observe(t, mk(event.WristbandSOS, "sos-5-2-301", "")); r.ID != a.ID || r.Count != 2 || r.State != alarm.Acknowledged {
		t.Errorf("repeat while acknowledged: id %s count %d state %s", r.ID, r.Count, r.State)
	}
	res, err := e.m.Resolve(bg, a.ID, "guard-li", "  resident pressed by mistake  ")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != alarm.Resolved || res.Resolved.By != "guard-li" || res.Resolved.Note != "resident pressed by mistake" {
		t.Errorf("resolved = %+v", res.Resolved)
	}
	full, _ := e.m.Get(a.ID)
	want := []string{"opened", "acknowledged", "repeated", "resolved"}
	if acts := actions(full.Timeline); !slices.Equal(acts, want) {
		t.Errorf("timeline = %v, want %v", acts, want)
	}
	for i := 1; i < len(full.Timeline); i++ {
		if full.Timeline[i].At.Before(full.Timeline[i-1].At) {
			t.Errorf("timeline not in time order: %v", full.Timeline)
		}
	}
	if tl := full.Timeline[1]; tl.By != "guard-desk" || tl.Note != "on my way" {
		t.Errorf("ack entry = %+v", tl)
	}

	// alarm.* events are in the store, with the alarm's id, actor and note.
	for _, c := range []struct{ typ, state, actor, note string }{
		{event.AlarmOpened, "open", "", ""},
		{event.AlarmAcked, "acknowledged", "guard-desk", "on my way"},
		{event.AlarmResolved, "resolved", "guard-li", "resident pressed by mistake"},
	} {
		evs := e.storedOf(t, c.typ)
		if len(evs) != 1 {
			t.Fatalf("%s events = %d, want 1", c.typ, len(evs))
		}
		d := evs[0].Data
		if d["alarm_id"] != a.ID || d["state"] != c.state || d["key"] != "wristband.sos/sos-5-2-301" || evs[0].Source.ID != "sos-5-2-301" {
			t.Errorf("%s data = %v source %v", c.typ, d, evs[0].Source)
		}
		if c.actor != "" && (d["actor"] != c.actor || d["note"] != c.note) {
			t.Errorf("%s actor/note = %v/%v", c.typ, d["actor"], d["note"])
		}
		if err := evs[0].Validate(); err != nil {
			t.Errorf("%s: %v", c.typ, err)
		}
	}

	// Notify: one call per state change, in order, with the committed event.
	ch := e.recorded()
	var got []string
	for i, c := range ch {
		got = append(got, c.Action)
		if c.Event == nil || c.Event.Seq == 0 {
			t.Errorf("change %d (%s) has no committed event", i, c.Action)
		}
		if i > 0 && c.Alarm.Rev <= ch[i-1].Alarm.Rev {
			t.Errorf("rev not increasing: %d after %d", c.Alarm.Rev, ch[i-1].Alarm.Rev)
		}
		if c.Alarm.Timeline != nil {
			t.Errorf("change %d carries the timeline", i)
		}
		var p map[string]any
		if err := json.Unmarshal(c.Payload(), &p); err != nil || p["action"] != c.Action || p["id"] != a.ID || p["state"] != string(c.Alarm.State) {
			t.Errorf("payload %s: %v", c.Payload(), err)
		}
		if _, ok := p["timeline"]; ok {
			t.Errorf("payload has a timeline: %s", c.Payload())
		}
	}
	if !slices.Equal(got, []string{"opened", "acknowledged", "resolved"}) {
		t.Errorf("notified %v", got)
	}

	// After resolve, the same condition opens a new alarm.
	n := e.observe(t, mk(event.WristbandSOS, "sos-5-2-301", ""))
	if n.ID == a.ID || n.State != alarm.Open || n.Count != 1 {
		t.Errorf("after resolve: id %s (old %s) state %s count %d", n.ID, a.ID, n.State, n.Count)
	}

	// Audit has both actions with their actors.
	entries, err := e.audit.List(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, en := range entries {
		audited = append(audited, en.Action+":"+en.Actor+":"+en.Target)
	}
	if !slices.Equal(audited, []string{"alarm.ack:guard-desk:" + a.ID, "alarm.resolve:guard-li:" + a.ID}) {
		t.Errorf("audit = %v", audited)
	}
	if v := metric(t, e.reg, "warden_alarm_ack_seconds", nil); v != 1 {
		t.Errorf("ack histogram count = %v", v)
	}
	if v := metric(t, e.reg, "warden_alarms", map[string]string{"state": "resolved"}); v != 1 {
		t.Errorf("resolved gauge = %v", v)
	}
	if v := metric(t, e.reg, "warden_alarms", map[string]string{"state": "open"}); v != 1 {
		t.Errorf("open gauge = %v", v)
	}
	if v := metric(t, e.reg, "warden_alarm_transitions_total", map[string]string{"to": "open"}); v != 2 {
		t.Errorf("transitions to open = %v", v)
	}
}

func TestWrongTransitions(t *testing.T) {
	e := newEnv(t, "", nil)
	a := e.observe(t, mk(event.PerimeterIntr, "fence-north", ""))
	if _, err := e.m.Resolve(bg, a.ID, "g", "   "); !errors.Is(err, alarm.ErrNoteRequired) {
		t.Errorf("resolve without note: %v", err)
	}
	if _, err := e.m.Ack(bg, a.ID, "g", ""); err != nil {
		t.Fatalf("ack without note: %v", err)
	}
	if _, err := e.m.Ack(bg, a.ID, "g", ""); !errors.Is(err, alarm.ErrConflict) {
		t.Errorf("second ack: %v", err)
	}
	if _, err := e.m.Resolve(bg, a.ID, "g", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Resolve(bg, a.ID, "g", "again"); !errors.Is(err, alarm.ErrConflict) {
		t.Errorf("second resolve: %v", err)
	}
	if _, err := e.m.Ack(bg, a.ID, "g", ""); !errors.Is(err, alarm.ErrConflict) {
		t.Errorf("ack of resolved: %v", err)
	}
	if _, err := e.m.Ack(bg, "01JD0Z3K9Q4N2T8V5W6X7Y8Z9A", "g", ""); !errors.Is(err, alarm.ErrNotFound) {
		t.Errorf("ack unknown: %v", err)
	}
	big := make([]byte, alarm.MaxNoteBytes+1)
	for i := range big {
		big[i] = 'x'
	}
	b := e.observe(t, mk(event.PerimeterIntr, "fence-south", ""))
	if _, err := e.m.Ack(bg, b.ID, "g", string(big)); !errors.Is(err, alarm.ErrBadNote) {
		t.Errorf("huge note: %v", err)
	}
	// Open → resolved directly is allowed (handled without pressing ack).
	if r, err := e.m.Resolve(bg, b.ID, "g", "checked, cat on the fence"); err != nil || r.Acknowledged != nil {
		t.Errorf("resolve from open: %v %+v", err, r)
	}
	if got := len(e.recorded()); got != 5 {
		t.Errorf("notifications = %d, want 5 (refused actions notify nothing)", got)
	}
}

func TestPolicy(t *testing.T) {
	e := newEnv(t, "", nil)
	cases := []struct {
		typ   string
		sev   event.Severity
		alarm bool
	}{
		{event.GasLeak, event.Critical, true},
		{event.GasLeak, event.Warning, true},
		{event.FaceUnknown, event.Warning, true},
		{event.WristbandBatt, event.Warning, true}, // wristband.*
		{event.PerimeterTamper, event.Warning, true},
		{event.CameraOffline, event.Warning, true},
		{event.GateFault, event.Warning, false}, // not in the list
		{event.GateFault, event.Critical, true}, // critical always
		{event.GateVehicle, event.Info, false},
		{event.MotionDetected, event.Info, false},
		{event.FaceWatchlist, event.Info, false}, // info never
		{event.AlarmEscalated, event.Critical, false},
	}
	for i, c := range cases {
		ev := mk(c.typ, "src-"+string(rune('a'+i)), c.sev)
		e.commit(t, ev)
		a, opened, err := e.m.Observe(bg, *ev)
		if err != nil {
			t.Fatal(err)
		}
		if (a != nil) != c.alarm || opened != c.alarm {
			t.Errorf("%s/%s: alarm=%v opened=%v, want %v", c.typ, c.sev, a != nil, opened, c.alarm)
		}
	}
	// Observe ignores seqs it has seen.
	ev := mk(event.ThrowDetected, "facade-3", "")
	e.commit(t, ev)
	if _, opened, _ := e.m.Observe(bg, *ev); !opened {
		t.Fatal("throw did not open")
	}
	if a, _, _ := e.m.Observe(bg, *ev); a != nil {
		t.Errorf("replayed seq %d touched alarm %s", ev.Seq, a.ID)
	}
	if got := e.m.Cursor(); got != ev.Seq {
		t.Errorf("cursor = %d, want %d", got, ev.Seq)
	}

	bad := alarm.Policy{WarningTypes: []string{"gas.leek"}}
	if _, err := alarm.New(alarm.Options{DB: e.st.DB(), Policy: &bad}); err == nil {
		t.Error("unknown policy type accepted")
	}
}

func TestRaiseWithKeyAndSeverity(t *testing.T) {
	e := newEnv(t, "", nil)
	ev := e.commit(t, mk(event.GateVehicle, "gate-north", ""))[0]
	a, err := e.m.Raise(bg, *ev, "tailgate/gate-north", event.Warning)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key != "tailgate/gate-north" || a.Severity != event.Warning || a.Type != event.GateVehicle {
		t.Errorf("raised = %+v", a)
	}
	// A worse repeat raises the severity and is notified.
	ev2 := e.commit(t, mk(event.GateVehicle, "gate-north", ""))[0]
	b, err := e.m.Raise(bg, *ev2, "tailgate/gate-north", event.Critical)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID || b.Count != 2 || b.Severity != event.Critical {
		t.Errorf("repeat = id %s count %d sev %s", b.ID, b.Count, b.Severity)
	}
	ch := e.recorded()
	if len(ch) != 2 || ch[1].Action != alarm.ActRepeated || ch[1].Event != nil {
		t.Errorf("changes = %+v", ch)
	}
	if _, err := e.m.Raise(bg, *ev2, "", "loud"); err == nil {
		t.Error("bad severity accepted")
	}
}

func TestClearingAddsEntryButDoesNotResolve(t *testing.T) {
	e := newEnv(t, "", nil)
	a := e.observe(t, mk(event.GasLeak, "gas-1", ""))
	c := e.observe(t, mk(event.GasCleared, "gas-1", ""))
	if c == nil || c.ID != a.ID || c.State != alarm.Open || c.ClearedAt == nil {
		t.Fatalf("after gas.cleared: %+v", c)
	}
	// Clearing an unrelated source touches nothing.
	if x := e.observe(t, mk(event.GasCleared, "gas-2", "")); x != nil {
		t.Errorf("gas.cleared of gas-2 touched %s", x.ID)
	}
	// The condition coming back resets cleared_at.
	r := e.observe(t, mk(event.GasLeak, "gas-1", ""))
	if r.ClearedAt != nil || r.Count != 2 {
		t.Errorf("after relapse: cleared_at %v count %d", r.ClearedAt, r.Count)
	}
	// camera.online clears camera.offline of the same camera.
	cam := *mk(event.CameraOffline, "entrance", "")
	cam.Source.Kind = "camera"
	e.observe(t, &cam)
	on := *mk(event.CameraOnline, "entrance", "")
	on.Source.Kind = "camera"
	co := e.observe(t, &on)
	if co == nil || co.ClearedAt == nil || co.State != alarm.Open {
		t.Errorf("camera.online: %+v", co)
	}
	full, _ := e.m.Get(a.ID)
	if acts := actions(full.Timeline); !slices.Equal(acts, []string{"opened", "cleared", "repeated"}) {
		t.Errorf("timeline = %v", acts)
	}
	var got []string
	for _, c := range e.recorded() {
		got = append(got, c.Action+":"+c.Alarm.Type)
	}
	want := []string{"opened:gas.leak", "cleared:gas.leak", "opened:camera.offline", "cleared:camera.offline"}
	if !slices.Equal(got, want) {
		t.Errorf("notified %v, want %v", got, want)
	}
	if n := len(e.storedOf(t, "alarm.resolved")); n != 0 {
		t.Errorf("clearing recorded %d alarm.resolved", n)
	}
}

func TestEscalation(t *testing.T) {
	e := newEnv(t, "", func(o *alarm.Options) { o.EscalateAfter = 100 * time.Millisecond })
	// A routine warning alarm: escalation raises its level, never its
	// severity or priority (a camera offline must not look like a leak).
	a := e.observe(t, mk(event.CameraOffline, "cam-1", ""))
	if a.Severity != event.Warning || a.Priority != alarm.PriorityRoutine {
		t.Fatalf("severity = %s priority %d", a.Severity, a.Priority)
	}
	b := e.observe(t, mk(event.GasLeak, "gas-9", ""))
	if _, err := e.m.Ack(bg, b.ID, "guard-desk", ""); err != nil {
		t.Fatal(err)
	}
	stop := e.run(t)
	testenv.Until(t, 30*time.Second, "three escalations", func() bool {
		g, err := e.m.Get(a.ID)
		return err == nil && g.EscalationLevel == 3 && len(e.storedOf(t, event.AlarmEscalated)) == 3
	})
	// Well past another period: it stays at the maximum.
	time.Sleep(400 * time.Millisecond)
	stop() // Run has finished every escalation it started
	g, _ := e.m.Get(a.ID)
	if !g.Escalated || g.EscalationLevel != 3 || g.Severity != event.Warning || g.Priority != alarm.PriorityRoutine || g.EscalatedAt == nil {
		t.Errorf("escalated alarm = level %d sev %s priority %d escalated %v", g.EscalationLevel, g.Severity, g.Priority, g.Escalated)
	}
	want := []string{"opened", "escalated", "escalated", "escalated"}
	if acts := actions(g.Timeline); !slices.Equal(acts, want) {
		t.Errorf("timeline = %v", acts)
	}
	if g.Timeline[1].By != "gateway" || g.Timeline[1].Note == "" {
		t.Errorf("escalation entry = %+v", g.Timeline[1])
	}
	esc := e.storedOf(t, event.AlarmEscalated)
	if len(esc) != 3 {
		t.Fatalf("alarm.escalated events = %d, want 3", len(esc))
	}
	for _, ev := range esc {
		if ev.Severity != event.Critical || ev.Data["alarm_id"] != a.ID || ev.Data["severity"] != "warning" || ev.Data["priority"] != float64(alarm.PriorityRoutine) {
			t.Errorf("escalated event %s %v", ev.Severity, ev.Data)
		}
	}
	// The acknowledged alarm was never escalated.
	if bb, _ := e.m.Get(b.ID); bb.Escalated || bb.EscalationLevel != 0 {
		t.Errorf("acknowledged alarm escalated to %d", bb.EscalationLevel)
	}
	var levels []string
	for _, c := range e.recorded() {
		if c.Action == alarm.ActEscalated {
			levels = append(levels, string(c.Alarm.Severity))
		}
	}
	if !slices.Equal(levels, []string{"warning", "warning", "warning"}) {
		t.Errorf("re-notified severities = %v", levels)
	}
	if v := metric(t, e.reg, "warden_alarm_escalations_total", nil); v != 3 {
		t.Errorf("escalations metric = %v", v)
	}
}

func TestEscalationKeepsClassAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	opts := func(o *alarm.Options) { o.EscalateAfter = 500 * time.Millisecond }
	e := newEnv(t, dir, opts)
	ev := e.commit(t, mk(event.GateVehicle, "gate-1", ""))[0]
	a, err := e.m.Raise(bg, *ev, "", event.Info)
	if err != nil {
		t.Fatal(err)
	}
	stop := e.run(t)
	testenv.Until(t, 30*time.Second, "first escalation", func() bool {
		g, _ := e.m.Get(a.ID)
		return g.EscalationLevel >= 1
	})
	stop()
	g, _ := e.m.Get(a.ID)
	if g.Severity != event.Info || g.Priority != alarm.PriorityRoutine {
		t.Fatalf("level %d: severity %s priority %d, want info 3", g.EscalationLevel, g.Severity, g.Priority)
	}
	prev := g.EscalationLevel
	e.st.Close()

	// Restart: the escalation goes on from the persisted state.
	e2 := newEnv(t, dir, opts)
	e2.run(t)
	testenv.Until(t, 30*time.Second, "escalation to the maximum after restart", func() bool {
		g, _ := e2.m.Get(a.ID)
		// The alarm is persisted just before its event is appended.
		return g.EscalationLevel == 3 && len(e2.storedOf(t, event.AlarmEscalated)) == 3
	})
	g, _ = e2.m.Get(a.ID)
	if g.Severity != event.Info || len(e2.storedOf(t, event.AlarmEscalated)) != 3 {
		t.Errorf("after restart from level %d: severity %s, %d alarm.escalated events", prev, g.Severity, len(e2.storedOf(t, event.AlarmEscalated)))
	}
}

func TestPruneResolved(t *testing.T) {
	e := newEnv(t, "", func(o *alarm.Options) { o.KeepResolved = time.Millisecond; o.EscalateAfter = time.Hour })
	a := e.observe(t, mk(event.GasLeak, "gas-1", ""))
	b := e.observe(t, mk(event.GasLeak, "gas-2", ""))
	if _, err := e.m.Resolve(bg, a.ID, "g", "fixed"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	e.run(t)
	testenv.Until(t, 30*time.Second, "resolved alarm pruned", func() bool {
		_, err := e.m.Get(a.ID)
		return errors.Is(err, alarm.ErrNotFound)
	})
	if _, err := e.m.Get(b.ID); err != nil {
		t.Errorf("open alarm pruned: %v", err)
	}
	if v := metric(t, e.reg, "warden_alarms", map[string]string{"state": "resolved"}); v != 0 {
		t.Errorf("resolved gauge = %v", v)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, nil)
	a := e.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	if _, err := e.m.Ack(bg, a.ID, "guard-desk", "going"); err != nil {
		t.Fatal(err)
	}
	b := e.observe(t, mk(event.WristbandFall, "band-7", ""))
	if _, err := e.m.Resolve(bg, b.ID, "guard-desk", "helped up, fine"); err != nil {
		t.Fatal(err)
	}
	old := e.observe(t, mk(event.ThrowDetected, "facade-3", ""))
	cursor := e.m.Cursor()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, dir, nil)
	g, err := e2.m.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.State != alarm.Acknowledged || g.Acknowledged.By != "guard-desk" || g.Acknowledged.Note != "going" || len(g.Timeline) != 2 {
		t.Errorf("reopened = state %s ack %+v timeline %v", g.State, g.Acknowledged, actions(g.Timeline))
	}
	if got := e2.m.Cursor(); got != cursor {
		t.Errorf("cursor after reopen = %d, want %d", got, cursor)
	}
	// The active index survived: a repeat lands on the same alarm.
	r := e2.observe(t, mk(event.GasLeak, "gas-3-2-201", ""))
	if r.ID != a.ID || r.Count != 2 {
		t.Errorf("repeat after reopen: id %s count %d", r.ID, r.Count)
	}
	for state, want := range map[alarm.State][]string{
		alarm.Open: {old.ID}, alarm.Acknowledged: {a.ID}, alarm.Resolved: {b.ID}, "": {old.ID, b.ID, a.ID},
	} {
		list, err := e2.m.List(state, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range list {
			ids = append(ids, x.ID)
			if x.Timeline != nil {
				t.Errorf("list carries timelines")
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("List(%q) = %v, want %v (newest first)", state, ids, want)
		}
	}
	// Paging with before.
	p1, _ := e2.m.List("", "", 2)
	p2, _ := e2.m.List("", p1[1].ID, 2)
	if len(p1) != 2 || len(p2) != 1 || p2[0].ID != a.ID {
		t.Errorf("pages %d + %d", len(p1), len(p2))
	}
	if v := metric(t, e2.reg, "warden_alarms", map[string]string{"state": "resolved"}); v != 1 {
		t.Errorf("resolved gauge after reopen = %v", v)
	}
}

func TestFollowSourceAndResume(t *testing.T) {
	dir := t.TempDir()
	// History before the first start is not re-alarmed.
	pre := storetest.Open(t, store.Options{Dir: dir, Logger: testLogger()})
	if err := pre.Append(bg, mk(event.GasLeak, "old-leak", "")); err != nil {
		t.Fatal(err)
	}
	pre.Close()

	withSource := func(o *alarm.Options) { o.Source = o.Sink.(alarm.Source) }
	e := newEnv(t, dir, withSource)
	stop := e.run(t)
	e.commit(t, mk(event.GasLeak, "gas-5", ""), mk(event.MotionDetected, "cam", ""), mk(event.GasLeak, "gas-5", ""))
	testenv.Until(t, 30*time.Second, "alarm from the followed log", func() bool {
		l, _ := e.m.List(alarm.Open, "", 0)
		return len(l) == 1 && l[0].Count == 2
	})
	e.commit(t, mk(event.GasCleared, "gas-5", ""))
	testenv.Until(t, 30*time.Second, "cleared entry", func() bool {
		l, _ := e.m.List(alarm.Open, "", 0)
		return len(l) == 1 && l[0].ClearedAt != nil
	})
	stop()
	last := e.st.LastSeq()
	if c := e.m.Cursor(); c != last {
		t.Errorf("cursor %d, last seq %d (alarm.* events are read past too)", c, last)
	}
	e.st.Close()

	// Restart: nothing is counted twice; new events are followed.
	e2 := newEnv(t, dir, withSource)
	e2.run(t)
	e2.commit(t, mk(event.GasLeak, "gas-5", ""))
	testenv.Until(t, 30*time.Second, "repeat after restart", func() bool {
		l, _ := e2.m.List(alarm.Open, "", 0)
		return len(l) == 1 && l[0].Count == 3
	})
	time.Sleep(200 * time.Millisecond)
	l, _ := e2.m.List("", "", 0)
	if len(l) != 1 || l[0].Count != 3 {
		t.Errorf("alarms = %d, count %d; want 1 with count 3 (old-leak history not alarmed)", len(l), l[0].Count)
	}
}

func TestOutboxRecordsAfterSinkFailure(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir, nil)
	// A closed store refuses appends: the change persists, the event waits.
	dead := storetest.Open(t, store.Options{Logger: testLogger()})
	dead.Close()
	m1, err := alarm.New(alarm.Options{DB: e.st.DB(), Gateway: "gw-test", Sink: dead, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ev := e.commit(t, mk(event.FaceWatchlist, "entrance", ""))[0]
	a, _, err := m1.Observe(bg, *ev)
	if err != nil || a == nil {
		t.Fatalf("observe with failing sink: %v", err)
	}
	if n := len(e.storedOf(t, event.AlarmOpened)); n != 0 {
		t.Fatalf("alarm.opened stored = %d", n)
	}
	// The next manager on the same file (a restart) records it.
	e2, err := alarm.New(alarm.Options{DB: e.st.DB(), Gateway: "gw-test", Sink: e.st, Logger: testLogger(), EscalateAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { _ = e2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testenv.Until(t, 30*time.Second, "outbox flushed", func() bool { return len(e.storedOf(t, event.AlarmOpened)) == 1 })
	got := e.storedOf(t, event.AlarmOpened)[0]
	if got.Data["alarm_id"] != a.ID {
		t.Errorf("recorded %v", got.Data)
	}
}

// A detector flapping around its threshold (leak, clear, leak, …) keeps a
// timeline of two counted entries, not one entry per flap.
func TestFlappingTimelineStaysSmall(t *testing.T) {
	e := newEnv(t, "", nil)
	a := e.observe(t, mk(event.GasLeak, "g1", ""))
	for range 500 {
		e.observe(t, mk(event.GasCleared, "g1", ""))
		e.observe(t, mk(event.GasLeak, "g1", ""))
	}
	g, err := e.m.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(actions(g.Timeline), []string{"opened", "cleared", "repeated"}) || g.Timeline[1].Repeats != 500 || g.Timeline[2].Repeats != 500 || g.Count != 501 {
		t.Errorf("timeline %+v count %d, want opened, cleared ×500, repeated ×500", g.Timeline, g.Count)
	}
}

func TestPriority(t *testing.T) {
	over := map[string]int{"gate.*": 2, "wristband.heart_rate": 1}
	for typ, want := range map[string]int{
		event.GasLeak: 1, event.ValveFault: 1, event.WristbandSOS: 1, event.WristbandFall: 1, event.ThrowDetected: 1,
		event.PerimeterIntr: 2, event.FaceWatchlist: 2, "system.storage": 2,
		event.FaceUnknown: 3, event.CameraOffline: 3, "wristband.heart_rate": 1, event.GateDenied: 2,
	} {
		if got := alarm.Priority(over, typ); got != want {
			t.Errorf("Priority(%s) = %d, want %d", typ, got, want)
		}
	}
	if got := alarm.Priority(nil, event.GateDenied); got != alarm.PriorityRoutine {
		t.Errorf("default gate.denied = %d", got)
	}
	e := newEnv(t, "", func(o *alarm.Options) { o.Priorities = over })
	if a := e.observe(t, mk(event.GateDenied, "gate-1", "")); a.Priority != 2 {
		t.Errorf("gate.denied alarm priority = %d with override gate.*: 2", a.Priority)
	}
	if a := e.observe(t, mk(event.GasLeak, "gas-1", "")); a.Priority != 1 {
		t.Errorf("gas.leak alarm priority = %d", a.Priority)
	}
}
