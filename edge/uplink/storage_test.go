package uplink_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
)

// eventSize measures the stored size of the test events in a scratch store.
func eventSize(t *testing.T) int64 {
	st := storetest.Open(t, store.Options{})
	uplinktest.Fill(t, st, 100, func(i int) *event.Event {
		return uplinktest.Event(event.GateVehicle, event.Warning, map[string]any{"i": 1000 + i})
	})
	return st.Stats().Bytes / 100
}

// Disk full: the platform is down and the budget small. Eviction takes info
// first, then warning; undelivered critical events stay, and when only they
// are left over budget the gateway says so loudly. Delivery ends it.
func TestBacklogBudgetEvictionOrderAndStorageFull(t *testing.T) {
	size := eventSize(t)
	dir := t.TempDir()
	var up atomic.Pointer[uplink.Uplink]
	protect := func() uint64 {
		if u := up.Load(); u != nil {
			return u.Protect()
		}
		return 1
	}
	p := uplinktest.NewPlatform(t)
	p.Stop() // down until the end
	st, err := store.Open(store.Options{Dir: dir, MaxBytes: 200 * size, Protect: protect})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st, Registerer: reg, StorageCheck: 20 * time.Millisecond})
	up.Store(r.U)
	mk := func(sev event.Severity) func(int) *event.Event {
		return func(i int) *event.Event {
			return uplinktest.Event(event.GateVehicle, sev, map[string]any{"i": 1000 + i})
		}
	}
	retain := func(stage string) (store.RetainStats, store.Stats) {
		t.Helper()
		rs, err := st.Retain(time.Now())
		if err != nil {
			t.Fatalf("%s: retain: %v", stage, err)
		}
		s := st.Stats()
		t.Logf("%s: evicted %v, left %v, over budget %v", stage, rs.BySeverity, s.BySeverity, rs.OverBudget)
		return rs, s
	}

	// 1: 100 critical + 50 warning + 100 info = 250 against 200: info goes.
	uplinktest.Fill(t, st, 100, mk(event.Critical))
	uplinktest.Fill(t, st, 50, mk(event.Warning))
	uplinktest.Fill(t, st, 100, mk(event.Info))
	rs, s := retain("info first")
	if rs.BySeverity[event.Info] == 0 || rs.BySeverity[event.Warning] != 0 || rs.BySeverity[event.Critical] != 0 ||
		s.BySeverity[event.Info] == 0 || rs.OverBudget {
		t.Fatal("want only (some) info evicted")
	}
	// 2: +100 warning: the remaining info go, then the oldest warnings.
	uplinktest.Fill(t, st, 100, mk(event.Warning))
	rs, s = retain("then warning")
	if s.BySeverity[event.Info] != 0 || rs.BySeverity[event.Warning] == 0 || s.BySeverity[event.Warning] == 0 ||
		rs.BySeverity[event.Critical] != 0 || s.BySeverity[event.Critical] != 100 || rs.OverBudget {
		t.Fatal("want all info and some warning evicted, critical kept")
	}
	if r.U.Healthy() != nil {
		t.Fatalf("Healthy() = %v before the budget is exhausted", r.U.Healthy())
	}
	// 3: +150 critical: 250 undelivered critical events exceed the budget.
	uplinktest.Fill(t, st, 150, mk(event.Critical))
	rs, s = retain("critical only")
	if s.BySeverity[event.Warning] != 0 || s.BySeverity[event.Info] != 0 || s.BySeverity[event.Critical] < 250 ||
		rs.BySeverity[event.Critical] != 0 || !rs.OverBudget || !st.OverBudget() {
		t.Fatal("want everything but critical evicted, critical kept, over budget")
	}
	testenv.Until(t, time.Minute, "storage-full signal", func() bool { return r.U.Healthy() != nil })
	if err := r.U.Healthy(); !strings.Contains(err.Error(), "only undelivered critical events remain") {
		t.Errorf("Healthy() = %v", err)
	}
	if v := testenv.CounterValue(t, reg, "warden_uplink_backlog_critical_full"); v != 1 {
		t.Errorf("warden_uplink_backlog_critical_full = %v, want 1", v)
	}
	testenv.Until(t, time.Minute, "system.storage event", func() bool {
		evs, _, _ := st.Read(0, 10, store.Filter{TypePrefix: event.SystemStorage})
		return len(evs) == 1
	})
	// Still full on the next passes: one event per episode, not per pass.
	retain("still full")
	time.Sleep(100 * time.Millisecond)
	if evs, _, _ := st.Read(0, 10, store.Filter{TypePrefix: event.SystemStorage}); len(evs) != 1 || evs[0].Severity != event.Critical {
		t.Fatalf("system.storage events = %+v, want exactly one critical", evs)
	}

	// The platform comes back: everything is delivered, the budget holds
	// again, and the signal clears.
	p.Start()
	testenv.Until(t, time.Minute, "backlog delivered", func() bool { return r.U.Protect() == st.LastSeq()+1 })
	retain("after delivery")
	testenv.Until(t, time.Minute, "signal cleared", func() bool { return r.U.Healthy() == nil })
	if v := testenv.CounterValue(t, reg, "warden_uplink_backlog_critical_full"); v != 0 {
		t.Errorf("gauge after recovery = %v", v)
	}
	seqs, dups := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	p.Mu.Lock()
	crit := 0
	for _, n := range p.Types {
		crit += n
	}
	p.Mu.Unlock()
	if crit < 251 { // 250 critical + system.storage, plus the surviving warnings
		t.Errorf("platform got %d events, want every critical one", crit)
	}

	// The bbolt file reopens fine with the same counters.
	r.Stop()
	before := st.Stats()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := storetest.Open(t, store.Options{Dir: dir})
	after := st2.Stats()
	if after.Events != before.Events || after.Bytes != before.Bytes || after.LastSeq != before.LastSeq {
		t.Fatalf("reopened stats %+v, before close %+v", after, before)
	}
	if c, _ := st2.Cursor("uplink:http"); c != before.LastSeq {
		t.Fatalf("cursor after reopen = %d, want %d", c, before.LastSeq)
	}
}
