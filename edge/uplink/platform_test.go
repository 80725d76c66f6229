package uplink_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
)

// platform is the fake community platform: a real HTTP server on
// 127.0.0.1 that can be stopped and restarted on the same port.
type platform struct {
	t    testing.TB
	addr string

	mu       sync.Mutex
	srv      *http.Server
	ids      map[string]int // id -> times received
	seqs     []uint64       // in arrival order, accepted batches only
	types    map[string]int
	keys     []string
	requests int
	conns    atomic.Int64 // TCP connections accepted
	times    []time.Time  // of every request
	media    map[string][]byte
	mediaHdr map[string]http.Header
	// hook may answer a request itself (return true); batch is decoded.
	hook func(w http.ResponseWriter, r *http.Request, batch []wireEvent, n int) bool
	// pre may answer a request before its body is read.
	pre func(w http.ResponseWriter, r *http.Request, n int) bool
	// mediaHook may answer a media request itself.
	mediaHook func(w http.ResponseWriter, r *http.Request) bool
}

// platformKey finds the platform in a hook's request context.
type platformKey struct{}

type wireEvent struct {
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq"`
	Type     string         `json:"type"`
	Severity string         `json:"severity"`
	Data     map[string]any `json:"data"`
}

func newPlatform(t testing.TB) *platform {
	p := &platform{t: t, ids: map[string]int{}, types: map[string]int{}, media: map[string][]byte{}, mediaHdr: map[string]http.Header{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

func (p *platform) url() string { return "http://" + p.addr + "/api/events" }

func (p *platform) serve(l net.Listener) {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, cs http.ConnState) {
			if cs == http.StateNew {
				p.conns.Add(1)
			}
		}}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop closes the listener and every connection: the platform is down.
func (p *platform) stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (p *platform) start() {
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("platform restart on %s: %v", p.addr, err)
	}
	p.serve(l)
}

func (p *platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/events/media/") {
		p.serveMedia(w, r)
		return
	}
	p.mu.Lock()
	p.requests++
	n := p.requests
	p.times = append(p.times, time.Now())
	hook, pre := p.hook, p.pre
	p.mu.Unlock()
	r = r.WithContext(context.WithValue(r.Context(), platformKey{}, p))
	if pre != nil && pre(w, r, n) {
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Idempotency-Key") == "" {
		http.Error(w, "want gzip POST with Idempotency-Key", http.StatusBadRequest)
		return
	}
	var batch []wireEvent
	zr, err := gzip.NewReader(r.Body)
	if err == nil {
		err = json.NewDecoder(zr).Decode(&batch)
	}
	if err != nil {
		// A cut body is the client's problem only if it says so; answer 400 as a platform would.
		http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if hook != nil && hook(w, r, batch, n) {
		return
	}
	for _, e := range batch {
		if e.Data["poison"] == true {
			http.Error(w, fmt.Sprintf(`{"error":"event %s is poison"}`, e.ID), http.StatusBadRequest)
			return
		}
	}
	p.accept(r, batch)
	w.WriteHeader(http.StatusOK)
}

// accept stores a batch as the platform's database would.
func (p *platform) accept(r *http.Request, batch []wireEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range batch {
		p.ids[e.ID]++
		p.seqs = append(p.seqs, e.Seq)
		p.types[e.Type]++
	}
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
}

func (p *platform) serveMedia(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	hook := p.mediaHook
	p.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPut {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/api/events/media/")
	p.mu.Lock()
	p.media[id] = b
	p.mediaHdr[id] = r.Header.Clone()
	p.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (p *platform) setHook(h func(w http.ResponseWriter, r *http.Request, batch []wireEvent, n int) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

func (p *platform) received() (seqs []uint64, dups int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.ids {
		dups += n - 1
	}
	return append([]uint64(nil), p.seqs...), dups
}

func (p *platform) distinct() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

func mkEvent(typ string, sev event.Severity, data map[string]any) *event.Event {
	return eventtest.New(typ, eventtest.Severity(sev), eventtest.Data(data), eventtest.Source("test", "t1"), eventtest.Location(event.Location{}))
}

// fill appends n info events in commits of up to 200.
func fill(t testing.TB, st *store.Store, n int, mk func(i int) *event.Event) {
	t.Helper()
	if mk == nil {
		mk = func(i int) *event.Event {
			return mkEvent(event.GateVehicle, event.Info, map[string]any{"i": i, "plate": "A12345"})
		}
	}
	for i := 0; i < n; {
		var evs []*event.Event
		for j := 0; j < 200 && i < n; j++ {
			evs = append(evs, mk(i))
			i++
		}
		if err := st.Append(context.Background(), evs...); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

func fastConfig(url string) config.Uplink {
	return config.Uplink{
		HTTP:       &config.UplinkHTTP{URL: url, Timeout: config.Duration(10 * time.Second)},
		Batch:      200,
		Linger:     config.Duration(20 * time.Millisecond),
		MinBackoff: config.Duration(20 * time.Millisecond),
		MaxBackoff: config.Duration(300 * time.Millisecond),
	}
}

// running is an uplink running in the background until stop.
type running struct {
	u    *uplink.Uplink
	stop func()
}

func runUplink(t testing.TB, o uplink.Options) *running {
	t.Helper()
	if o.Gateway == "" {
		o.Gateway = "gw-test"
	}
	u, err := uplink.New(o)
	if err != nil {
		t.Fatalf("uplink.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("uplink.Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("uplink.Run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{u: u, stop: stop}
}

// assertInOrder checks that seqs strictly increase (in order, no repeats).
func assertInOrder(t testing.TB, seqs []uint64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("out of order or repeated at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
}
