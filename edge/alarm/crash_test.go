package alarm_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/event"

	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
)

const crashDirEnv = "WARDEN_ALARM_CRASH_DIR"

// crashChild is the process TestCrashMidFollow kills: it follows the log in
// the directory it is given until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashMidFollow")
	}
	st := storetest.Open(t, store.Options{Dir: dir, Logger: testLogger()})
	m, err := alarm.New(alarm.Options{
		DB: st.DB(), Gateway: "gw-test", Sink: st, Source: st, Logger: testLogger(), EscalateAfter: time.Hour,
		Notify: []func(alarm.Change){func(c alarm.Change) { fmt.Printf("CHANGE %s %s\n", c.Action, c.Alarm.Key) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("FOLLOWING")
	_ = m.Run(context.Background()) // until killed
}

// A gateway killed (SIGKILL) while following a burst loses no alarm and
// counts no event twice: state and cursor commit together, a batch at a
// time, and the restart observes exactly the events after the cursor.
func TestCrashMidFollow(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	// The first start persists the cursor at the (empty) log's end.
	st := storetest.Open(t, store.Options{Dir: dir, Logger: testLogger()})
	if _, err := alarm.New(alarm.Options{DB: st.DB(), Sink: st, Source: st, Logger: testLogger()}); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	want := map[string]int{} // key → raising events
	var evs []*event.Event
	for i := range n {
		var ev *event.Event
		switch i % 5 {
		case 0:
			ev = mk(event.MotionDetected, "cam", "")
		case 1, 2:
			ev = mk(event.PerimeterIntr, fmt.Sprintf("p%d", i/5%3), "")
		case 3:
			ev = mk(event.GasLeak, fmt.Sprintf("g%d", i/1000), "") // a new alarm every 1000 events
		default:
			ev = mk(event.DeviceOffline, fmt.Sprintf("d%d", i/2000), "")
			if i%50 == 4 {
				ev = mk(event.DeviceOnline, fmt.Sprintf("d%d", i/2000), "") // clears count nothing
			}
		}
		if ev.Type != event.MotionDetected && ev.Type != event.DeviceOnline {
			want[alarm.Key(ev)]++
		}
		evs = append(evs, ev)
		if len(evs) == 1000 {
			if err := st.Append(bg, evs...); err != nil {
				t.Fatal(err)
			}
			evs = nil
		}
	}
	last := st.LastSeq()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The child follows; it is killed a few batches in.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	seen := false
	for !seen && sc.Scan() {
		seen = sc.Text() == "CHANGE opened gas.leak/g2"
	}
	// Somewhere in a later batch: reading, staging, committing or flushing.
	time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if !seen {
		t.Fatalf("child ended before opening the third gas alarm")
	}

	e := newEnv(t, dir, func(o *alarm.Options) { o.Source = o.Sink.(alarm.Source); o.EscalateAfter = time.Hour })
	resumed := e.m.Cursor()
	t.Logf("killed at cursor %d of %d", resumed, last)
	e.run(t)
	testenv.Until(t, 30*time.Second, "follow to the end", func() bool {
		if e.m.Cursor() < last {
			return false
		}
		l, _ := e.m.List("", "", 1000)
		sum := 0
		for _, a := range l {
			sum += a.Count
		}
		return sum >= n*4/5-n/50
	})
	time.Sleep(100 * time.Millisecond) // nothing more may come
	l, err := e.m.List("", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range l {
		if _, dup := got[a.Key]; dup {
			t.Errorf("two alarms for %s", a.Key)
		}
		got[a.Key] = a.Count
	}
	if len(got) != len(want) {
		t.Errorf("%d alarms, want %d", len(got), len(want))
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("%s: count %d, want %d (lost or counted twice)", k, got[k], c)
		}
	}
	p := findAlarm(t, e, "perimeter.intrusion/p0", alarm.Open)
	full, err := e.m.Get(p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if acts := actions(full.Timeline); len(acts) != 2 || full.Timeline[1].Repeats != p.Count-1 {
		t.Errorf("p0 timeline %v (repeats %d, count %d)", acts, full.Timeline[len(full.Timeline)-1].Repeats, p.Count)
	}
	// alarm.opened at least once per alarm; a repeat only as a redelivery
	// of the same event (same id).
	byAlarm := map[string]map[string]bool{}
	for _, ev := range e.storedOf(t, event.AlarmOpened) {
		id := fmt.Sprint(ev.Data["alarm_id"])
		if byAlarm[id] == nil {
			byAlarm[id] = map[string]bool{}
		}
		byAlarm[id][ev.ID] = true
	}
	for _, a := range l {
		if len(byAlarm[a.ID]) != 1 {
			t.Errorf("alarm %s (%s): %d distinct alarm.opened events, want 1", a.ID, a.Key, len(byAlarm[a.ID]))
		}
	}
}
