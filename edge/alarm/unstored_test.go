package alarm_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/testenv"
)

// flakySink is the store as Sink, failing on demand like a full disk.
type flakySink struct {
	st   *store.Store
	fail atomic.Bool
}

func (f *flakySink) Append(ctx context.Context, evs ...*event.Event) error {
	if f.fail.Load() {
		return errors.New("no space left on device")
	}
	return f.st.Append(ctx, evs...)
}

// failingEnv is a running manager that follows the store and whose Sink
// is failing, like a full disk.
func failingEnv(t *testing.T) (*env, *flakySink) {
	t.Helper()
	sink := &flakySink{}
	e := newEnv(t, "", func(o *alarm.Options) {
		sink.st = o.Sink.(*store.Store)
		o.Sink, o.Source = sink, sink.st
	})
	e.run(t)
	sink.fail.Store(true)
	return e, sink
}

func waitAlarm(t *testing.T, m *alarm.Manager, what string, ok func(alarm.Alarm) bool) alarm.Alarm {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := m.List(alarm.Open, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if ok(a) {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in %+v", what, as)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Alarms whose events cannot be stored are shown from memory at once,
// marked unstored; once the events are stored the same alarms (same ids)
// are stored too.
func TestUnstoredAlarmsShownThenStored(t *testing.T) {
	e, sink := failingEnv(t)

	fault := mk(event.ValveFault, "valve-1", "")
	leak := mk(event.GasLeak, "gas-1", "")
	info := mk(event.GasCleared, "gas-2", "")
	e.m.HoldUnstored(fault)
	e.m.ShowUnstored(leak, info)
	vf := waitAlarm(t, e.m, "valve.fault from memory", func(a alarm.Alarm) bool { return a.Type == event.ValveFault && a.Unstored })
	gl := waitAlarm(t, e.m, "gas.leak from memory", func(a alarm.Alarm) bool { return a.Type == event.GasLeak && a.Unstored })
	if got, err := e.m.Get(vf.ID); err != nil || !got.Unstored {
		t.Errorf("Get(%s) = %+v, %v", vf.ID, got, err)
	}
	opened := 0
	for _, c := range e.recorded() {
		if c.Action == alarm.ActOpened && c.Alarm.Unstored {
			opened++
		}
		if c.Alarm.Type == event.GasCleared {
			t.Errorf("an info event opened an alarm: %+v", c.Alarm)
		}
	}
	if opened != 2 {
		t.Errorf("%d unstored opened notifications, want 2: %+v", opened, e.recorded())
	}
	if v := testenv.MetricValue(t, e.reg, "warden_alarms_unstored", nil); v != 2 {
		t.Errorf("warden_alarms_unstored = %v", v)
	}

	// The disk recovers: the held fault is stored by the manager, the leak
	// by whoever resends it (here, by hand).
	sink.fail.Store(false)
	e.commit(t, leak)
	for _, want := range []alarm.Alarm{vf, gl} {
		waitAlarm(t, e.m, want.Type+" stored under its id", func(a alarm.Alarm) bool { return a.ID == want.ID && !a.Unstored })
	}
	evs, _, err := e.st.Read(0, 100, store.Filter{TypePrefix: event.ValveFault})
	if err != nil || len(evs) != 1 || evs[0].ID != fault.ID {
		t.Fatalf("held valve.fault in the store: %+v, %v", evs, err)
	}
	as, _ := e.m.List("", "", 100)
	if len(as) != 2 {
		t.Errorf("%d alarms after recovery, want 2 (no duplicates): %+v", len(as), as)
	}
	if v := testenv.MetricValue(t, e.reg, "warden_alarms_unstored", nil); v != 0 {
		t.Errorf("warden_alarms_unstored = %v after recovery", v)
	}
}

// A guard may acknowledge an unstored alarm once the disk takes writes
// again, before its event is stored; the event then counts as a repeat.
func TestAckUnstoredAlarm(t *testing.T) {
	e, sink := failingEnv(t)
	leak := mk(event.GasLeak, "gas-1", "")
	e.m.ShowUnstored(leak)
	a := waitAlarm(t, e.m, "unstored leak", func(a alarm.Alarm) bool { return a.Unstored })
	sink.fail.Store(false)
	acked, err := e.m.Ack(context.Background(), a.ID, "guard-1", "on my way")
	if err != nil || acked.State != alarm.Acknowledged || acked.Unstored {
		t.Fatalf("ack: %+v, %v", acked, err)
	}
	e.commit(t, leak)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.m.Get(a.ID)
		if err == nil && got.Count == 2 && got.State == alarm.Acknowledged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarm after the event was stored: %+v, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
