package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/testenv"
)

var testTypes = []string{event.GasLeak, event.GateVehicle, event.WristbandHR, event.CameraOffline, event.FaceUnknown, event.ThrowDetected}

func mkEvent(t testing.TB, typ string, sev event.Severity, building string) *event.Event {
	t.Helper()
	return eventtest.New(typ, eventtest.Severity(sev), eventtest.Source("test", "src-"+building),
		eventtest.Location(event.Location{Building: building, Unit: "2", Room: "201"}), eventtest.Data(map[string]any{"n": 1}))
}

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func allSeqs(t *testing.T, s *Store, f Filter) []uint64 {
	t.Helper()
	var out []uint64
	after := uint64(0)
	for {
		evs, next, err := s.Read(after, maxLimit, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, ev := range evs {
			out = append(out, ev.Seq)
		}
		after = next
	}
}

func TestDurabilityAndSeqContinues(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	ctx := context.Background()
	var want []*event.Event
	for i := range 10 {
		batch := []*event.Event{mkEvent(t, event.GasLeak, "", "1"), mkEvent(t, event.GateVehicle, "", fmt.Sprint(i))}
		if err := s.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	for i, ev := range want {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d got seq %d, want %d", i, ev.Seq, i+1)
		}
	}
	st1 := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Append(ctx, mkEvent(t, event.GasLeak, "", "1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}

	s = openStore(t, Options{Dir: dir})
	if s.LastSeq() != 20 {
		t.Fatalf("LastSeq after reopen = %d, want 20", s.LastSeq())
	}
	evs, next, err := s.Read(0, 100, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 20 || next != 20 {
		t.Fatalf("read %d events next %d, want 20/20", len(evs), next)
	}
	for i, ev := range evs {
		if ev.ID != want[i].ID || ev.Seq != want[i].Seq || ev.Type != want[i].Type || !ev.Time.Equal(want[i].Time.Truncate(time.Millisecond)) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, *want[i])
		}
	}
	got, err := s.Get(7)
	if err != nil || got.ID != want[6].ID {
		t.Fatalf("Get(7) = %v, %v", got.ID, err)
	}
	if _, err := s.Get(999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(999) err = %v, want ErrNotFound", err)
	}
	st2 := s.Stats()
	if st2.Events != st1.Events || st2.Bytes != st1.Bytes || st2.BySeverity[event.Critical] != 10 || st2.OldestTime.IsZero() {
		t.Fatalf("stats after reopen %+v, before %+v", st2, st1)
	}
	ev := mkEvent(t, event.GasLeak, "", "1")
	if err := s.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 21 {
		t.Fatalf("seq after reopen = %d, want 21", ev.Seq)
	}
	raws, err := s.ReadRaw(19, 10)
	if err != nil || len(raws) != 2 || raws[1].Seq != 21 || raws[1].Type != event.GasLeak || raws[1].Severity != event.Critical {
		t.Fatalf("ReadRaw = %+v, %v", raws, err)
	}
	if !bytes.Contains(raws[1].JSON, []byte(`"seq":21,`)) || !bytes.Contains(raws[1].JSON, []byte(ev.ID)) {
		t.Fatalf("raw JSON %s", raws[1].JSON)
	}
}

func TestSeqSurvivesEvictionAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir, MaxAge: time.Hour})
	for range 5 {
		if err := s.Append(context.Background(), mkEvent(t, event.GateVehicle, "", "1")); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.Retain(time.Now().Add(2 * time.Hour))
	if err != nil || rs.Evicted != 5 || rs.BySeverity[event.Info] != 5 {
		t.Fatalf("retain = %+v, %v", rs, err)
	}
	if st := s.Stats(); st.Events != 0 || st.Bytes != 0 {
		t.Fatalf("stats after evicting all: %+v", st)
	}
	_ = s.Close()
	s = openStore(t, Options{Dir: dir})
	ev := mkEvent(t, event.GateVehicle, "", "1")
	if err := s.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 6 {
		t.Fatalf("seq after evicting everything and reopening = %d, want 6", ev.Seq)
	}
}

func TestConcurrentAppendersShareCommits(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openStore(t, Options{Registerer: reg})
	const writers, each = 40, 25
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for range each {
				ev := mkEvent(t, event.GateVehicle, "", fmt.Sprint(w))
				if err := s.Append(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
				seqs <- ev.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] || q == 0 || q > writers*each {
			t.Fatalf("bad or repeated seq %d", q)
		}
		seen[q] = true
	}
	st := s.Stats()
	if len(seen) != writers*each || st.Events != writers*each {
		t.Fatalf("%d seqs, %d events stored", len(seen), st.Events)
	}
	if st.Commits >= writers*each {
		t.Fatalf("%d commits for %d appends: group commit is not sharing fsyncs", st.Commits, writers*each)
	}
	t.Logf("%d appends in %d commits", writers*each, st.Commits)
	if n := testutil.CollectAndCount(reg, "warden_store_commit_seconds", "warden_store_commit_batch_size", "warden_store_events", "warden_store_bytes", "warden_store_media_bytes"); n != 5 {
		t.Fatalf("metrics found: %d", n)
	}
	// the disk Warden writes to, for "storage nearly full" alerts
	free := testenv.MetricValue(t, reg, "warden_store_disk_free_bytes", nil)
	size := testenv.MetricValue(t, reg, "warden_store_disk_size_bytes", nil)
	if free <= 0 || size <= 0 || free > size {
		t.Errorf("disk free %v of %v bytes", free, size)
	}
	// Close unregisters, so a reopened store can register on the same registry.
	dir := s.dir
	_ = s.Close()
	s2 := openStore(t, Options{Dir: dir, Registerer: reg})
	if s2.LastSeq() != writers*each {
		t.Fatal("reopen lost events")
	}
}

func TestSubmitOrderAndDoneOnce(t *testing.T) {
	s := openStore(t, Options{})
	const n = 500
	var mu sync.Mutex
	calls := make([]int, n)
	evs := make([]*event.Event, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		evs[i] = mkEvent(t, event.GateVehicle, "", "1")
		s.Submit(&Request{Events: []*event.Event{evs[i]}, Done: func(r Result) {
			if r.Err != nil || r.Dup {
				t.Errorf("request %d: %+v", i, r)
			}
			mu.Lock()
			calls[i]++
			mu.Unlock()
			wg.Done()
		}})
	}
	wg.Wait()
	for i := range n {
		if calls[i] != 1 {
			t.Fatalf("Done for request %d called %d times", i, calls[i])
		}
		if evs[i].Seq != uint64(i+1) {
			t.Fatalf("request %d got seq %d: not submission order", i, evs[i].Seq)
		}
	}
	// A request without Done, and a bad one mixed in with good ones.
	s.Submit(&Request{Events: []*event.Event{mkEvent(t, event.GateVehicle, "", "1")}})
	bad := mkEvent(t, event.GateVehicle, "", "1")
	bad.Severity = "loud"
	for _, tc := range []struct {
		name string
		evs  []*event.Event
	}{{"nil", []*event.Event{nil}}, {"severity", []*event.Event{bad}}} {
		ch := make(chan Result, 1)
		s.Submit(&Request{Events: tc.evs, Done: func(r Result) { ch <- r }})
		if r := <-ch; r.Err == nil {
			t.Fatalf("%s event accepted", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, r.Err)
		}
	}
	if err := s.Append(context.Background(), mkEvent(t, event.GateVehicle, "", "1")); err != nil {
		t.Fatal(err)
	}
	if s.LastSeq() != n+2 {
		t.Fatalf("LastSeq = %d, want %d", s.LastSeq(), n+2)
	}
	_ = s.Close()
	ch := make(chan Result, 1)
	s.Submit(&Request{Events: []*event.Event{mkEvent(t, event.GateVehicle, "", "1")}, Done: func(r Result) { ch <- r }})
	if r := <-ch; !errors.Is(r.Err, ErrClosed) {
		t.Fatalf("submit after close: %+v", r)
	}
}

func submitWait(s *Store, r *Request) Result {
	ch := make(chan Result, 1)
	r.Done = func(res Result) { ch <- res }
	s.Submit(r)
	return <-ch
}

func TestDedup(t *testing.T) {
	s := openStore(t, Options{DedupWindow: time.Minute})
	ev := func() []*event.Event { return []*event.Event{mkEvent(t, event.GasLeak, "", "1")} }
	if r := submitWait(s, &Request{Events: ev(), DedupKey: "msg-1", SkipIfSeen: true}); r.Dup || r.Err != nil {
		t.Fatalf("first: %+v", r)
	}
	dl := &DeadLetter{Source: "x", Reason: "dup test"}
	if r := submitWait(s, &Request{Events: ev(), DedupKey: "msg-1", SkipIfSeen: true, DeadLetter: dl}); !r.Dup || r.Err != nil {
		t.Fatalf("second: %+v, want Dup", r)
	}
	if r := submitWait(s, &Request{Events: ev(), DedupKey: "msg-2", SkipIfSeen: true}); r.Dup {
		t.Fatalf("other key: %+v", r)
	}
	// Without SkipIfSeen the key is recorded but never suppresses.
	if r := submitWait(s, &Request{Events: ev(), DedupKey: "msg-2"}); r.Dup {
		t.Fatalf("no SkipIfSeen: %+v", r)
	}
	// Two requests with the same key in flight at once: exactly one commits.
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for range 20 {
		wg.Add(1)
		s.Submit(&Request{Events: ev(), DedupKey: "burst", SkipIfSeen: true, Done: func(r Result) {
			mu.Lock()
			if r.Dup {
				dups++
			}
			mu.Unlock()
			wg.Done()
		}})
	}
	wg.Wait()
	if dups != 19 {
		t.Fatalf("%d of 20 same-key requests were dups, want 19", dups)
	}
	if s.LastSeq() != 4 || s.Stats().Events != 4 {
		t.Fatalf("LastSeq %d, events %d, want 4", s.LastSeq(), s.Stats().Events)
	}
	if dls, _ := s.DeadLetters(0, 10); len(dls) != 0 {
		t.Fatalf("a dup request stored its dead letter: %+v", dls)
	}
	rs, err := s.Retain(time.Now().Add(2 * time.Minute))
	if err != nil || rs.DedupPruned != 3 {
		t.Fatalf("retain %+v %v, want 3 keys pruned", rs, err)
	}
	if r := submitWait(s, &Request{Events: ev(), DedupKey: "msg-1", SkipIfSeen: true}); r.Dup {
		t.Fatalf("key still remembered after its window: %+v", r)
	}
}

func TestDeadLetters(t *testing.T) {
	s := openStore(t, Options{})
	big := bytes.Repeat([]byte("x"), 5000)
	r := submitWait(s, &Request{DeadLetter: &DeadLetter{Source: "mqtt", Topic: "zigbee2mqtt/x", Reason: "bad json", Payload: big}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	dls, err := s.DeadLetters(0, 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("%v %v", dls, err)
	}
	d := dls[0]
	if d.ID != 1 || len(d.Payload) != 4096 || d.Size != 5000 || d.Topic != "zigbee2mqtt/x" || d.Time.IsZero() {
		t.Fatalf("dead letter = id %d payload %d size %d topic %q", d.ID, len(d.Payload), d.Size, d.Topic)
	}
	// The bucket keeps the newest 10,000.
	var wg sync.WaitGroup
	const extra = maxDeadLetters + 9
	wg.Add(extra)
	for i := range extra {
		s.Submit(&Request{DeadLetter: &DeadLetter{Reason: fmt.Sprint(i), Payload: []byte("p")}, Done: func(Result) { wg.Done() }})
	}
	wg.Wait()
	if st := s.Stats(); st.DeadLetters != maxDeadLetters {
		t.Fatalf("DeadLetters count %d", st.DeadLetters)
	}
	var all []DeadLetterRecord
	for after := uint64(0); ; {
		page, err := s.DeadLetters(after, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != maxDeadLetters || all[0].ID != 11 || all[len(all)-1].ID != extra+1 || all[len(all)-1].Reason != fmt.Sprint(extra-1) {
		t.Fatalf("kept %d, first %d, last %d", len(all), all[0].ID, all[len(all)-1].ID)
	}
}

func TestReadPagingNeverSkipsOrRepeats(t *testing.T) {
	s := openStore(t, Options{MaxBytes: 1 << 30})
	s.scanChunk, s.retainChunk = 7, 5 // cross transaction boundaries
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []*event.Event
	for i := range 700 {
		ev := mkEvent(t, testTypes[rng.IntN(len(testTypes))], severities[rng.IntN(3)], fmt.Sprint(rng.IntN(4)))
		ev.Time = base.Add(time.Duration(i) * time.Minute)
		batch = append(batch, ev)
		if len(batch) == 50 {
			if err := s.Append(context.Background(), batch...); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	// Evict some from the middle of the log (all info), so paging crosses holes.
	s.opts.MaxBytes = s.Stats().Bytes * 8 / 10
	if rs, err := s.Retain(time.Now()); err != nil || rs.Evicted == 0 {
		t.Fatalf("retain %+v %v", rs, err)
	}
	filters := []Filter{
		{},
		{TypePrefix: "gas."},
		{TypePrefix: "gate"},
		{MinSeverity: event.Warning},
		{MinSeverity: event.Critical, Building: "2"},
		{Since: base.Add(100 * time.Minute), Until: base.Add(400 * time.Minute)},
		{SourceID: "src-3", Unit: "2", Room: "201"},
		{Zone: "nowhere"},
	}
	for _, f := range filters {
		full := allSeqs(t, s, f)
		for trial := range 3 {
			var got []uint64
			after := uint64(0)
			for {
				evs, next, err := s.Read(after, 1+rng.IntN(40), f)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 {
					if next != after {
						t.Fatalf("empty page moved next from %d to %d", after, next)
					}
					break
				}
				if next != evs[len(evs)-1].Seq {
					t.Fatalf("next %d is not the last seq %d", next, evs[len(evs)-1].Seq)
				}
				for _, ev := range evs {
					got = append(got, ev.Seq)
				}
				after = next
			}
			if fmt.Sprint(got) != fmt.Sprint(full) {
				t.Fatalf("filter %+v trial %d: paged %d events, full scan %d", f, trial, len(got), len(full))
			}
			// Backwards, newest first, gives the same events reversed.
			got = got[:0]
			before := uint64(0)
			for {
				evs, next, err := s.ReadBack(before, 1+rng.IntN(40), f)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 {
					if next != before {
						t.Fatalf("empty backward page moved next from %d to %d", before, next)
					}
					break
				}
				for _, ev := range evs {
					if len(got) > 0 && ev.Seq >= got[len(got)-1] {
						t.Fatalf("backward page not newest first: %d after %d", ev.Seq, got[len(got)-1])
					}
					got = append(got, ev.Seq)
				}
				before = next
			}
			slices.Reverse(got)
			if fmt.Sprint(got) != fmt.Sprint(full) {
				t.Fatalf("filter %+v trial %d: backwards %d events, full scan %d", f, trial, len(got), len(full))
			}
		}
		// The full scan itself must match the filter applied by hand.
		var want []uint64
		for q := uint64(1); q <= s.LastSeq(); q++ {
			ev, err := s.Get(q)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			l := lite{Type: ev.Type, Severity: ev.Severity, Time: ev.Time, Source: ev.Source, Location: ev.Location}
			if f.match(&l) {
				want = append(want, q)
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(full) {
			t.Fatalf("filter %+v: scan %v, want %v", f, full, want)
		}
		t.Logf("filter %+v: %d events", f, len(full))
	}
}

func TestChangedBroadcast(t *testing.T) {
	s := openStore(t, Options{})
	ch1, ch2 := s.Changed(), s.Changed()
	select {
	case <-ch1:
		t.Fatal("closed before any commit")
	default:
	}
	// A commit without events (dead letter only) does not signal.
	submitWait(s, &Request{DeadLetter: &DeadLetter{Reason: "x"}})
	select {
	case <-ch1:
		t.Fatal("closed by a commit without events")
	default:
	}
	if err := s.Append(context.Background(), mkEvent(t, event.GasLeak, "", "1")); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan struct{}{ch1, ch2} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("Changed not closed after commit")
		}
	}
	select {
	case <-s.Changed():
		t.Fatal("new Changed channel already closed")
	default:
	}
}

func TestCursorsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Options{Dir: dir})
	if v, err := s.Cursor("uplink.http"); err != nil || v != 0 {
		t.Fatalf("unset cursor = %d, %v", v, err)
	}
	if err := s.SetCursor("uplink.http", 42); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor("uplink.mqtt", 7); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor("", 1); err == nil {
		t.Fatal("empty cursor name accepted")
	}
	_ = s.Close()
	if _, err := s.Cursor("uplink.http"); !errors.Is(err, ErrClosed) {
		t.Fatalf("cursor after close: %v", err)
	}
	s = openStore(t, Options{Dir: dir})
	if v, _ := s.Cursor("uplink.http"); v != 42 {
		t.Fatalf("cursor after reopen = %d", v)
	}
	if v, _ := s.Cursor("uplink.mqtt"); v != 7 {
		t.Fatalf("cursor after reopen = %d", v)
	}
}

func TestRetentionOrderAndProtect(t *testing.T) {
	reg := prometheus.NewRegistry()
	var protect uint64 = 1 << 62
	var pmu sync.Mutex
	s := openStore(t, Options{Registerer: reg, Protect: func() uint64 { pmu.Lock(); defer pmu.Unlock(); return protect }})
	s.retainChunk = 2
	// 30 events interleaved: seq%3==1 info, 2 warning, 0 critical.
	var evs []*event.Event
	for range 10 {
		evs = append(evs, mkEvent(t, event.GateVehicle, event.Info, "1"), mkEvent(t, event.GateDenied, event.Warning, "1"), mkEvent(t, event.GasLeak, event.Critical, "1"))
	}
	if err := s.Append(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	per := s.Stats().Bytes / 30 // events are the same size give or take a byte
	bySev := func() map[event.Severity]int64 { return s.Stats().BySeverity }

	// Budget for ~25 events: info goes first, oldest first.
	s.opts.MaxBytes = s.Stats().Bytes - 5*per + per/2
	rs, err := s.Retain(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rs.BySeverity[event.Info] != 5 || rs.Evicted != 5 {
		t.Fatalf("first pass %+v", rs)
	}
	if _, err := s.Get(1); !errors.Is(err, ErrNotFound) {
		t.Fatal("oldest info (seq 1) kept")
	}
	if _, err := s.Get(16); err != nil {
		t.Fatal("newer info (seq 16) evicted")
	}
	// Budget for ~12: all info, then the oldest warnings.
	s.opts.MaxBytes = 12*per + per/2
	if rs, err = s.Retain(time.Now()); err != nil {
		t.Fatal(err)
	}
	if m := bySev(); m[event.Info] != 0 || m[event.Warning] != 2 || m[event.Critical] != 10 {
		t.Fatalf("after second pass %v (%+v)", m, rs)
	}
	// Budget for 3 with events from seq 18 on undelivered: only critical
	// with seq < 18 may go (3, 6, 9, 12, 15); 18..30 stay even over budget.
	pmu.Lock()
	protect = 18
	pmu.Unlock()
	s.opts.MaxBytes = 3 * per
	if rs, err = s.Retain(time.Now()); err != nil {
		t.Fatal(err)
	}
	if !rs.OverBudget || rs.BySeverity[event.Critical] != 5 {
		t.Fatalf("third pass %+v", rs)
	}
	for _, q := range []uint64{18, 21, 24, 27, 30} {
		if _, err := s.Get(q); err != nil {
			t.Fatalf("protected critical %d evicted: %v", q, err)
		}
	}
	if m := bySev(); m[event.Warning] != 0 || m[event.Critical] != 5 {
		t.Fatalf("after third pass %v", m)
	}
	if got := testutil.ToFloat64(s.metrics.evicted.WithLabelValues("critical", "bytes")); got != 5 {
		t.Fatalf("evicted critical metric = %v", got)
	}
	if got := testutil.ToFloat64(s.metrics.evicted.WithLabelValues("info", "bytes")); got != 10 {
		t.Fatalf("evicted info metric = %v", got)
	}
	// Age: everything is old now, but protected critical events stay.
	s.opts.MaxBytes, s.opts.MaxAge = 0, time.Hour
	if rs, err = s.Retain(time.Now().Add(2 * time.Hour)); err != nil || rs.Evicted != 0 {
		t.Fatalf("age pass evicted protected events: %+v %v", rs, err)
	}
	pmu.Lock()
	protect = 31
	pmu.Unlock()
	if rs, err = s.Retain(time.Now().Add(2 * time.Hour)); err != nil || rs.Evicted != 5 {
		t.Fatalf("age pass after delivery %+v %v", rs, err)
	}
	if st := s.Stats(); st.Events != 0 || st.Bytes != 0 || !st.OldestTime.IsZero() {
		t.Fatalf("stats after evicting all: %+v", st)
	}
}

func TestRunEnforcesBudgetSoon(t *testing.T) {
	s := openStore(t, Options{MaxBytes: 4000})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for range 10 {
		var evs []*event.Event
		for range 10 {
			evs = append(evs, mkEvent(t, event.GateVehicle, "", "1"))
		}
		if err := s.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Bytes > 4000 {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not bring bytes %d under budget", s.Stats().Bytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

func TestMediaQuota(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s := openStore(t, Options{Dir: dir, MediaMaxBytes: 250, Registerer: reg})
	var infos []MediaInfo
	for i := range 3 {
		mi, err := s.PutMedia("snapshot", "image/jpeg", bytes.Repeat([]byte{byte('a' + i)}, 100))
		if err != nil {
			t.Fatal(err)
		}
		if mi.Size != 100 || len(mi.SHA256) != 64 || mi.ID == "" {
			t.Fatalf("info %+v", mi)
		}
		infos = append(infos, mi)
	}
	if _, _, err := s.OpenMedia(infos[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest media not evicted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "media", infos[0].ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("evicted media file still on disk")
	}
	f, mi, err := s.OpenMedia(infos[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(data, bytes.Repeat([]byte{'c'}, 100)) || mi.ContentType != "image/jpeg" || mi.Kind != "snapshot" {
		t.Fatalf("read back %q %+v", data[:5], mi)
	}
	if st := s.Stats(); st.MediaBytes != 200 || st.MediaFiles != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := testutil.ToFloat64(s.metrics.mediaEvicted); got != 1 {
		t.Fatalf("media evicted metric = %v", got)
	}
	// Moving a file in.
	src := filepath.Join(dir, "clip.mp4")
	if err := os.WriteFile(src, bytes.Repeat([]byte("m"), 120), 0o600); err != nil {
		t.Fatal(err)
	}
	clip, err := s.PutMediaFile("clip", "video/mp4", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("source file not moved")
	}
	if st := s.Stats(); st.MediaBytes != 220 || st.MediaFiles != 2 {
		t.Fatalf("after clip %+v", st)
	}
	if _, err := s.PutMedia("clip", "video/mp4", make([]byte, 300)); err == nil {
		t.Fatal("media larger than the quota accepted")
	}
	if err := s.DeleteMedia(clip.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMedia(clip.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	for _, bad := range []string{"", "../warden.db", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if _, _, err := s.OpenMedia(bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OpenMedia(%q) = %v", bad, err)
		}
	}
	// Leftovers of a crash are cleaned on open; the rest survives.
	_ = os.WriteFile(filepath.Join(dir, "media", ".tmp-x"), []byte("x"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "media", "01JD0Z3K9Q4N2T8V5W6X7Y8Z9A"), []byte("x"), 0o600)
	_ = s.Close()
	s = openStore(t, Options{Dir: dir, MediaMaxBytes: 250})
	ents, _ := os.ReadDir(filepath.Join(dir, "media"))
	if len(ents) != 1 || ents[0].Name() != infos[2].ID {
		t.Fatalf("media dir after reopen: %v", ents)
	}
	if st := s.Stats(); st.MediaBytes != 100 || st.MediaFiles != 1 {
		t.Fatalf("after reopen %+v", st)
	}
}

func TestWithSeq(t *testing.T) {
	for _, id := range []string{"01JD0Z3K9Q4N2T8V5W6X7Y8Z9A", `we"ird\id,"seq":0,`, ""} {
		ev := mkEvent(t, event.GasLeak, "", "1")
		ev.ID = id
		ev.Data = map[string]any{"seq": 0}
		js, err := marshalEvents([]*event.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		out := withSeq(js[0], 12345)
		var back event.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("id %q: %v in %s", id, err, out)
		}
		if back.Seq != 12345 || back.ID != id || back.Data["seq"] != float64(0) {
			t.Fatalf("id %q: %s", id, out)
		}
	}
	if withSeq([]byte(`{"seq":0,"id":"x"}`), 1) != nil || withSeq([]byte(`{"id":"x","data":{"seq":0,}}`), 1) != nil {
		t.Fatal("spliced an unexpected layout")
	}
}

func TestChangedClosedOnClose(t *testing.T) {
	s := openStore(t, Options{})
	ch := s.Changed()
	_ = s.Close()
	for _, c := range []<-chan struct{}{ch, s.Changed()} {
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			t.Fatal("Changed not closed by Close")
		}
	}
}
