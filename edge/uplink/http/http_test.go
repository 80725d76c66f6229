package http_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
	"github.com/smartcommunity/warden/edge/testenv"
	"github.com/smartcommunity/warden/edge/uplink"
	uplinkhttp "github.com/smartcommunity/warden/edge/uplink/http"
	"github.com/smartcommunity/warden/edge/uplink/uplinktest"
)

// Outage: the platform is down for 60 s while 10,000 events flow in; when
// it comes back every event arrives once, in seq order. -short shortens the
// outage to 10 s.
func TestOutageAllArriveInOrder(t *testing.T) {
	down := 60 * time.Second
	if testing.Short() {
		down = 10 * time.Second
	}
	const n = 10000
	p := uplinktest.NewPlatform(t)
	st := storetest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	cfg := uplinktest.FastConfig(p.URL())
	cfg.MaxBackoff = config.Duration(time.Second)
	p.Stop()
	r := uplinktest.Run(t, uplink.Options{Config: cfg, Store: st, Registerer: reg})

	start := time.Now()
	per := n / 50
	for i := 0; i < 50; i++ { // spread the events over the downtime
		uplinktest.Fill(t, st, per, nil)
		time.Sleep(down / 50)
	}
	if got := r.U.Protect(); got != 1 {
		t.Fatalf("Protect() = %d while the platform is down, want 1", got)
	}
	if s := r.U.Status()[0]; s.BacklogEvents != n || !s.Retrying || s.LastError == "" {
		t.Errorf("status while down = %+v, want backlog %d, retrying, an error", s, n)
	}
	time.Sleep(time.Until(start.Add(down)))
	p.Start()
	testenv.Until(t, time.Minute, "all events after the outage", func() bool { return p.Distinct() == n })
	seqs, dups := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if dups != 0 || len(seqs) != n {
		t.Fatalf("got %d deliveries with %d duplicates, want %d and 0", len(seqs), dups, n)
	}
	testenv.Until(t, time.Minute, "cursor at the end", func() bool { return r.U.Protect() == n+1 })
	if v := testenv.MetricValue(t, reg, "warden_uplink_delivered_total", httpTarget); v != n {
		t.Errorf("delivered_total = %v, want %d", v, n)
	}
	if v := testenv.MetricValue(t, reg, "warden_uplink_retries_total", httpTarget); v < 1 {
		t.Errorf("retries_total = %v, want > 0 after an outage", v)
	}
	t.Logf("outage %s, %d events, delivered in order after it", down, n)
}

// httpTarget selects the http uplink's series.
var httpTarget = map[string]string{"target": "http"}

func TestFaults(t *testing.T) {
	type fault struct {
		name string
		hook func(w http.ResponseWriter, r *http.Request, batch []uplinktest.WireEvent, n int) bool
	}
	faults := []fault{
		{"slow", func(http.ResponseWriter, *http.Request, []uplinktest.WireEvent, int) bool {
			time.Sleep(150 * time.Millisecond)
			return false
		}},
		{"500", func(w http.ResponseWriter, _ *http.Request, _ []uplinktest.WireEvent, n int) bool {
			if n%3 != 0 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			}
			return false
		}},
		{"408 and 503 without Retry-After", func(w http.ResponseWriter, _ *http.Request, _ []uplinktest.WireEvent, n int) bool {
			switch n % 4 {
			case 1:
				w.WriteHeader(http.StatusRequestTimeout)
				return true
			case 2:
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		}},
		{"answer cut after the platform stored the batch", func(w http.ResponseWriter, r *http.Request, batch []uplinktest.WireEvent, n int) bool {
			if n%2 == 0 {
				return false
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return false
			}
			p := r.Context().Value(uplinktest.PlatformKey{}).(*uplinktest.Platform)
			p.Accept(r, batch) // a 200 was on its way: the platform has it
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			_ = buf.Flush()
			_ = conn.Close()
			return true
		}},
		{"connection reset before answer", func(w http.ResponseWriter, _ *http.Request, _ []uplinktest.WireEvent, n int) bool {
			if n%2 == 0 {
				return false
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return true
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			const n = 1500
			p := uplinktest.NewPlatform(t)
			p.SetHook(f.hook)
			deliverAll(t, p, n)
		})
	}
}

// deliverAll stores n events and waits until the platform has each once,
// in order.
func deliverAll(t *testing.T, p *uplinktest.Platform, n int) {
	t.Helper()
	st := storetest.Open(t, store.Options{})
	uplinktest.Fill(t, st, n, nil)
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "all events", func() bool { return r.U.Protect() == uint64(n)+1 })
	seqs, dups := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if len(seqs) != n || dups != 0 {
		t.Fatalf("%d deliveries, %d duplicates; want %d, 0", len(seqs), dups, n)
	}
}

// The connection drops while the gateway is still sending the body.
func TestDroppedMidRequestBody(t *testing.T) {
	const n = 1500
	p := uplinktest.NewPlatform(t)
	p.Mu.Lock()
	p.Pre = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n%2 == 0 {
			return false
		}
		buf := make([]byte, 64)
		_, _ = io.ReadFull(r.Body, buf)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.(*net.TCPConn).SetLinger(0) // RST, like a dying link
			_ = conn.Close()
		}
		return true
	}
	p.Mu.Unlock()
	deliverAll(t, p, n)
}

func TestRetryAfterHonoured(t *testing.T) {
	for _, form := range []string{"seconds", "http-date"} {
		t.Run(form, func(t *testing.T) {
			p := uplinktest.NewPlatform(t)
			var refusedAt atomic.Int64
			p.SetHook(func(w http.ResponseWriter, _ *http.Request, _ []uplinktest.WireEvent, n int) bool {
				if n != 1 {
					return false
				}
				refusedAt.Store(time.Now().UnixNano())
				if form == "seconds" {
					w.Header().Set("Retry-After", "2")
					w.WriteHeader(http.StatusTooManyRequests)
				} else {
					w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				return true
			})
			st := storetest.Open(t, store.Options{})
			uplinktest.Fill(t, st, 10, nil)
			r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
			testenv.Until(t, time.Minute, "delivery after Retry-After", func() bool { return r.U.Protect() == 11 })
			p.Mu.Lock()
			gap := p.Times[1].Sub(time.Unix(0, refusedAt.Load()))
			reqs := p.Requests
			p.Mu.Unlock()
			// Backoff alone would retry after ~20 ms; the platform asked for 2 s
			// (or an HTTP-date about 2-3 s ahead, with 1 s resolution).
			if gap < 1500*time.Millisecond || reqs != 2 {
				t.Fatalf("retried after %s with %d requests; want >= ~2s and exactly one retry", gap, reqs)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {" 0 ", 0}, {"-3", 0}, {"junk", 0},
		{"99999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := uplink.ParseRetryAfter(c.in, now); got != c.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// A batch with a poison event is refused with 400 as a whole; bisection
// must isolate exactly the poison events, dead-letter them with the
// platform's answer, and deliver the rest in order.
func TestPoisonIsolatedByBisection(t *testing.T) {
	const n = 1000
	poison := map[int]bool{7: true, 333: true, 334: true, 999: true}
	p := uplinktest.NewPlatform(t)
	st := storetest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	uplinktest.Fill(t, st, n, func(i int) *event.Event {
		return uplinktest.Event(event.GateVehicle, event.Info, map[string]any{"i": i, "poison": poison[i]})
	})
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st, Registerer: reg})
	// The dead letters add system.deadletter events after n, delivered too.
	want := uint64(n + len(poison))
	testenv.Until(t, time.Minute, "all events and dead-letter events", func() bool { return r.U.Protect() == want+1 })
	seqs, dups := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if dups != 0 || len(seqs) != int(want)-len(poison) {
		t.Fatalf("%d delivered (%d dups), want %d", len(seqs), dups, int(want)-len(poison))
	}
	got := map[uint64]bool{}
	for _, s := range seqs {
		got[s] = true
	}
	for i := 0; i < n; i++ {
		if got[uint64(i+1)] == poison[i] {
			t.Errorf("event %d (seq %d): delivered=%v, poison=%v", i, i+1, got[uint64(i+1)], poison[i])
		}
	}
	dls, err := st.DeadLetters(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != len(poison) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dls), len(poison), dls)
	}
	for _, d := range dls {
		if d.Source != "uplink:http" || !strings.Contains(d.Reason, "400") || !strings.Contains(d.Reason, "is poison") ||
			!strings.Contains(string(d.Payload), `"poison":true`) {
			t.Errorf("dead letter = %+v / %s", d, d.Payload)
		}
	}
	p.Mu.Lock()
	dlEvents := p.Types[event.SystemDeadLtr]
	p.Mu.Unlock()
	if dlEvents != len(poison) {
		t.Errorf("platform got %d system.deadletter events, want %d", dlEvents, len(poison))
	}
	evs, _, err := st.Read(uint64(n), 10, store.Filter{TypePrefix: event.SystemDeadLtr})
	if err != nil || len(evs) != len(poison) {
		t.Fatalf("system.deadletter events in store: %d, %v", len(evs), err)
	}
	if d := evs[0].Data; d["target"] != "http" || d["seq"] != float64(8) || d["status"] != float64(400) || d["event_id"] == "" ||
		!strings.Contains(d["response"].(string), "poison") {
		t.Errorf("system.deadletter data = %v", d)
	}
	if v := testenv.MetricValue(t, reg, "warden_uplink_deadlettered_total", httpTarget); v != float64(len(poison)) {
		t.Errorf("deadlettered_total = %v", v)
	}
}

// refusing makes the platform answer every batch with status until the

// A platform that answers 400 to everything dead-letters info events, but
// never a critical one: the gas leak stays first in line, retried, and one
// system.fault alarm says so. Once the platform takes it, everything after
// it follows in order.
func TestRejectedCriticalEventIsKeptAndRetried(t *testing.T) {
	p := uplinktest.NewPlatform(t)
	refuse := p.Refusing(http.StatusBadRequest, "schema says no")
	st := storetest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	uplinktest.Fill(t, st, 5, func(i int) *event.Event {
		if i == 2 {
			return uplinktest.Event(event.GasLeak, event.Critical, map[string]any{"i": i})
		}
		return uplinktest.Event(event.GateVehicle, event.Info, map[string]any{"i": i})
	})
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st, Registerer: reg})
	testenv.Until(t, time.Minute, "the leak rejected a few times", func() bool {
		p.Mu.Lock()
		defer p.Mu.Unlock()
		return p.Requests > 12
	})
	// Events 1 and 2 (seq) went to dead letters; the leak (seq 3) did not
	// and holds the line.
	if got := st.Stats().DeadLetters; got != 2 {
		t.Fatalf("%d dead letters, want the 2 info events before the leak", got)
	}
	if r.U.Protect() != 3 {
		t.Fatalf("cursor protects from seq %d, want 3 (the leak)", r.U.Protect())
	}
	if v := testenv.MetricValue(t, reg, "warden_uplink_rejected_critical_total", httpTarget); v != 1 {
		t.Errorf("rejected_critical_total = %v, want 1 (counted once, however often retried)", v)
	}
	faults, _, err := st.Read(0, 100, store.Filter{TypePrefix: event.SystemFault})
	if err != nil || len(faults) != 1 {
		t.Fatalf("system.fault events: %d (%v), want 1", len(faults), err)
	}
	if d := faults[0].Data; d["component"] != "uplink http" || d["seq"] != float64(3) || d["status"] != float64(400) ||
		faults[0].Severity != event.Critical {
		t.Errorf("system.fault = %s %v", faults[0].Severity, d)
	}
	refuse.Store(false)
	last := st.LastSeq()
	testenv.Until(t, time.Minute, "the leak and everything after it delivered", func() bool { return r.U.Protect() == last+1 })
	seqs, _ := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if len(seqs) == 0 || seqs[0] != 3 {
		t.Fatalf("delivered %v, want the leak (seq 3) first", seqs)
	}
}

// 401/403/404 are about the request, not the events: retried, never
// dead-lettered.
func TestAuthErrorsAreRetriedNotDeadLettered(t *testing.T) {
	p := uplinktest.NewPlatform(t)
	fail := p.Refusing(http.StatusUnauthorized, "bad token")
	st := storetest.Open(t, store.Options{})
	uplinktest.Fill(t, st, 300, nil)
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "a few retries", func() bool { p.Mu.Lock(); defer p.Mu.Unlock(); return p.Requests > 5 })
	if st.Stats().DeadLetters != 0 || r.U.Protect() != 1 {
		t.Fatalf("401 dead-lettered or advanced: dead %d, protect %d", st.Stats().DeadLetters, r.U.Protect())
	}
	fail.Store(false)
	testenv.Until(t, time.Minute, "delivery once the token is fixed", func() bool { return r.U.Protect() == 301 })
}

// Cursors are durable: a restarted uplink resumes where it stopped, with no
// resend of what was acknowledged.
func TestCursorSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := uplinktest.NewPlatform(t)
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	uplinktest.Fill(t, st, 500, nil)
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "first 500", func() bool { return r.U.Protect() == 501 })
	r.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = storetest.Open(t, store.Options{Dir: dir})
	if c, _ := st.Cursor("uplink:http"); c != 500 {
		t.Fatalf("cursor after reopen = %d, want 500", c)
	}
	u, err := uplink.New(uplink.Options{Gateway: "gw-test", Config: uplinktest.FastConfig(p.URL()), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if u.Protect() != 501 {
		t.Fatalf("Protect() before Run = %d, want 501", u.Protect())
	}
	uplinktest.Fill(t, st, 500, nil)
	r = uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "next 500", func() bool { return r.U.Protect() == 1001 })
	seqs, dups := p.Received()
	uplinktest.AssertInOrder(t, seqs)
	if len(seqs) != 1000 || dups != 0 {
		t.Fatalf("%d deliveries, %d dups across a restart", len(seqs), dups)
	}
	p.Mu.Lock()
	keys := map[string]bool{}
	for _, k := range p.Keys {
		if keys[k] {
			t.Errorf("idempotency key %s reused for a different batch", k)
		}
		keys[k] = true
	}
	p.Mu.Unlock()
}

func TestIdempotencyKeyDeterministic(t *testing.T) {
	a := store.Raw{Seq: 1, JSON: []byte(`{"id":"01JD0Z3K9Q4N2T8V5W6X7Y8Z9A","seq":1}`)}
	b := store.Raw{Seq: 200, JSON: []byte(`{"id":"01JD0Z3K9Q4N2T8V5W6X7Y8Z9B","seq":200}`)}
	k := uplinkhttp.IdempotencyKey("http", a, b)
	if k != uplinkhttp.IdempotencyKey("http", a, b) || len(k) != 32 {
		t.Fatalf("key %q not deterministic", k)
	}
	if k == uplinkhttp.IdempotencyKey("mqtt", a, b) || k == uplinkhttp.IdempotencyKey("http", a, a) {
		t.Fatal("key ignores target or range")
	}
	c := a
	c.JSON = []byte(`{"id":"01JD0Z3K9Q4N2T8V5W6X7Y8ZZZ","seq":1}`)
	if k == uplinkhttp.IdempotencyKey("http", c, b) {
		t.Fatal("key ignores the event ids (a wiped store restarting seq would collide)")
	}
}

func TestNoTargetsIsIdle(t *testing.T) {
	st := storetest.Open(t, store.Options{})
	u, err := uplink.New(uplink.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if u.Protect() != ^uint64(0) || len(u.Status()) != 0 || u.Healthy() != nil {
		t.Fatalf("idle uplink: protect %d, status %v, healthy %v", u.Protect(), u.Status(), u.Healthy())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// Media follow their events on their own queue: a failing media endpoint
// never holds events back, and once it works every file arrives intact.
func TestMediaQueueNeverDelaysEvents(t *testing.T) {
	p := uplinktest.NewPlatform(t)
	var mediaDown atomic.Bool
	mediaDown.Store(true)
	p.Mu.Lock()
	p.MediaHook = func(w http.ResponseWriter, _ *http.Request) bool {
		if mediaDown.Load() {
			http.Error(w, "media store down", http.StatusInternalServerError)
			return true
		}
		return false
	}
	p.Mu.Unlock()
	st := storetest.Open(t, store.Options{})
	snap := bytes.Repeat([]byte("jpeg"), 5000)
	mi, err := st.PutMedia("snapshot", "image/jpeg", snap)
	if err != nil {
		t.Fatal(err)
	}
	uplinktest.Fill(t, st, 300, func(i int) *event.Event {
		ev := uplinktest.Event(event.GateVehicle, event.Info, map[string]any{"i": i})
		if i == 10 {
			ev.Media = []event.Media{{Kind: "snapshot", URL: "/api/v1/media/" + mi.ID, SHA256: mi.SHA256}}
		}
		if i == 20 { // evicted before upload: skipped, counted
			ev.Media = []event.Media{{Kind: "clip", URL: "/api/v1/media/01JD0Z3K9Q4N2T8V5W6X7Y8Z9A"}}
		}
		return ev
	})
	r := uplinktest.Run(t, uplink.Options{Config: uplinktest.FastConfig(p.URL()), Store: st})
	testenv.Until(t, time.Minute, "events delivered while media fail", func() bool { return r.U.Protect() == 301 })
	var media uplink.TargetStatus
	for _, s := range r.U.Status() {
		if s.Kind == "media" {
			media = s
		}
	}
	if !media.Retrying || media.Cursor >= 11 {
		t.Fatalf("media status while its endpoint fails = %+v", media)
	}
	mediaDown.Store(false)
	testenv.Until(t, time.Minute, "media uploaded", func() bool {
		for _, s := range r.U.Status() {
			if s.Kind == "media" && s.Cursor == 300 {
				return true
			}
		}
		return false
	})
	p.Mu.Lock()
	defer p.Mu.Unlock()
	got, h := p.Media[mi.ID], p.MediaHdr[mi.ID]
	if !bytes.Equal(got, snap) || h.Get("Content-Type") != "image/jpeg" || h.Get("X-Warden-SHA256") != mi.SHA256 || h.Get("X-Warden-Event-Id") == "" {
		t.Fatalf("media upload: %d bytes, headers %v", len(got), h)
	}
	if len(p.Media) != 1 {
		t.Errorf("%d media uploaded, want 1 (the other was never stored)", len(p.Media))
	}
}
