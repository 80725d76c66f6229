// Package uplinktest holds what the uplink's tests share: the fake
// community Platform (a real HTTP server on 127.0.0.1) and helpers that
// fill a store and run an uplink.
package uplinktest

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
	_ "github.com/smartcommunity/warden/edge/uplink/all" // every target kind
)

// Platform is the fake community platform: a real HTTP server on
// 127.0.0.1 that can be stopped and restarted on the same port.
type Platform struct {
	t    testing.TB
	addr string

	Mu       sync.Mutex // guards the fields below
	srv      *http.Server
	IDs      map[string]int // id -> times received
	Seqs     []uint64       // in arrival order, accepted batches only
	Types    map[string]int
	Keys     []string
	Requests int
	Conns    atomic.Int64 // TCP connections accepted
	Times    []time.Time  // of every request
	Media    map[string][]byte
	MediaHdr map[string]http.Header
	// Hook may answer a request itself (return true); batch is decoded.
	Hook func(w http.ResponseWriter, r *http.Request, batch []WireEvent, n int) bool
	// Pre may answer a request before its body is read.
	Pre func(w http.ResponseWriter, r *http.Request, n int) bool
	// MediaHook may answer a media request itself.
	MediaHook func(w http.ResponseWriter, r *http.Request) bool
}

// PlatformKey finds the Platform in a hook's request context.
type PlatformKey struct{}

type WireEvent struct {
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq"`
	Type     string         `json:"type"`
	Severity string         `json:"severity"`
	Data     map[string]any `json:"data"`
}

// NewPlatform starts a platform for the test; it stops with it.
func NewPlatform(t testing.TB) *Platform {
	p := &Platform{t: t, IDs: map[string]int{}, Types: map[string]int{}, Media: map[string][]byte{}, MediaHdr: map[string]http.Header{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.Stop)
	return p
}

// URL is the events endpoint (media: URL + "/media/<id>").
func (p *Platform) URL() string { return "http://" + p.addr + "/api/events" }

func (p *Platform) serve(l net.Listener) {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, cs http.ConnState) {
			if cs == http.StateNew {
				p.Conns.Add(1)
			}
		}}
	p.Mu.Lock()
	p.srv = srv
	p.Mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop closes the listener and every connection: the Platform is down.
func (p *Platform) Stop() {
	p.Mu.Lock()
	srv := p.srv
	p.srv = nil
	p.Mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (p *Platform) Start() {
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("Platform restart on %s: %v", p.addr, err)
	}
	p.serve(l)
}

func (p *Platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/events/media/") {
		p.serveMedia(w, r)
		return
	}
	p.Mu.Lock()
	p.Requests++
	n := p.Requests
	p.Times = append(p.Times, time.Now())
	hook, pre := p.Hook, p.Pre
	p.Mu.Unlock()
	r = r.WithContext(context.WithValue(r.Context(), PlatformKey{}, p))
	if pre != nil && pre(w, r, n) {
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Idempotency-Key") == "" {
		http.Error(w, "want gzip POST with Idempotency-Key", http.StatusBadRequest)
		return
	}
	var batch []WireEvent
	zr, err := gzip.NewReader(r.Body)
	if err == nil {
		err = json.NewDecoder(zr).Decode(&batch)
	}
	if err != nil {
		// A cut body is the client's problem only if it says so; answer 400 as a Platform would.
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
	p.Accept(r, batch)
	w.WriteHeader(http.StatusOK)
}

// accept stores a batch as the Platform's database would.
func (p *Platform) Accept(r *http.Request, batch []WireEvent) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	for _, e := range batch {
		p.IDs[e.ID]++
		p.Seqs = append(p.Seqs, e.Seq)
		p.Types[e.Type]++
	}
	p.Keys = append(p.Keys, r.Header.Get("Idempotency-Key"))
}

func (p *Platform) serveMedia(w http.ResponseWriter, r *http.Request) {
	p.Mu.Lock()
	hook := p.MediaHook
	p.Mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPut {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/api/events/media/")
	p.Mu.Lock()
	p.Media[id] = b
	p.MediaHdr[id] = r.Header.Clone()
	p.Mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (p *Platform) SetHook(h func(w http.ResponseWriter, r *http.Request, batch []WireEvent, n int) bool) {
	p.Mu.Lock()
	p.Hook = h
	p.Mu.Unlock()
}

func (p *Platform) Received() (seqs []uint64, dups int) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	for _, n := range p.IDs {
		dups += n - 1
	}
	return append([]uint64(nil), p.Seqs...), dups
}

func (p *Platform) Distinct() int {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	return len(p.IDs)
}

// Event is an event of typ from source test/t1.
func Event(typ string, sev event.Severity, data map[string]any) *event.Event {
	return eventtest.New(typ, eventtest.Severity(sev), eventtest.Data(data), eventtest.Source("test", "t1"), eventtest.Location(event.Location{}))
}

// Fill appends n info events in commits of up to 200.
func Fill(t testing.TB, st *store.Store, n int, mk func(i int) *event.Event) {
	t.Helper()
	if mk == nil {
		mk = func(i int) *event.Event {
			return Event(event.GateVehicle, event.Info, map[string]any{"i": i, "plate": "A12345"})
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

// FastConfig is an HTTP uplink to url with short backoffs.
func FastConfig(url string) config.Uplink {
	return config.Uplink{
		HTTP:       &config.UplinkHTTP{URL: url, Timeout: config.Duration(10 * time.Second)},
		Batch:      200,
		Linger:     config.Duration(20 * time.Millisecond),
		MinBackoff: config.Duration(20 * time.Millisecond),
		MaxBackoff: config.Duration(300 * time.Millisecond),
	}
}

// Running is an uplink running in the background until stop.
type Running struct {
	U    *uplink.Uplink
	Stop func()
}

// Run starts an uplink (gateway gw-test unless set); it stops with the
// test.
func Run(t testing.TB, o uplink.Options) *Running {
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
	return &Running{U: u, Stop: stop}
}

// AssertInOrder checks that seqs strictly increase (in order, no repeats).
func AssertInOrder(t testing.TB, seqs []uint64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("out of order or repeated at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
}

// returned switch is turned off.
func (p *Platform) Refusing(status int, body string) *atomic.Bool {
	var on atomic.Bool
	on.Store(true)
	p.SetHook(func(w http.ResponseWriter, _ *http.Request, _ []WireEvent, _ int) bool {
		if on.Load() {
			http.Error(w, body, status)
			return true
		}
		return false
	})
	return &on
}
