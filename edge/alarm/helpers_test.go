package alarm_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/smartcommunity/warden/edge/testenv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/event/eventtest"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/store/storetest"
)

type env struct {
	dir   string
	st    *store.Store
	m     *alarm.Manager
	reg   *prometheus.Registry
	audit *audit.Log

	mu      sync.Mutex
	changes []alarm.Change
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newEnv opens a real store in dir (a fresh temp dir when empty) and a
// manager over its bbolt file with the store as Sink.
func newEnv(t testing.TB, dir string, mod func(*alarm.Options)) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e := &env{dir: dir, st: storetest.Open(t, store.Options{Dir: dir, Logger: testLogger()}), reg: prometheus.NewRegistry()}
	var err error
	if e.audit, err = audit.New(e.st.DB(), testLogger()); err != nil {
		t.Fatal(err)
	}
	o := alarm.Options{
		DB: e.st.DB(), Gateway: "gw-test", Site: "site", Sink: e.st, Audit: e.audit,
		Notify:     []func(alarm.Change){e.record},
		Logger:     testLogger(),
		Registerer: e.reg,
	}
	if mod != nil {
		mod(&o)
	}
	if e.m, err = alarm.New(o); err != nil {
		t.Fatalf("alarm.New: %v", err)
	}
	return e
}

func (e *env) record(c alarm.Change) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.changes = append(e.changes, c)
}

func (e *env) recorded() []alarm.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]alarm.Change(nil), e.changes...)
}

// run starts Run and stops it (waiting) at cleanup.
func (e *env) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func mk(typ, src string, sev event.Severity) *event.Event {
	return eventtest.New(typ, eventtest.Source("gas_detector", src), eventtest.Severity(sev))
}

// commit appends events to the store (which sets Seq) and returns them.
func (e *env) commit(t *testing.T, evs ...*event.Event) []*event.Event {
	t.Helper()
	if err := e.st.Append(context.Background(), evs...); err != nil {
		t.Fatalf("append: %v", err)
	}
	return evs
}

// observe commits each event and passes it to Observe, like the gateway.
func (e *env) observe(t *testing.T, evs ...*event.Event) *alarm.Alarm {
	t.Helper()
	var last *alarm.Alarm
	for _, ev := range e.commit(t, evs...) {
		a, _, err := e.m.Observe(context.Background(), *ev)
		if err != nil {
			t.Fatalf("observe %s: %v", ev.Type, err)
		}
		if a != nil {
			last = a
		}
	}
	return last
}

// storedOf returns the stored events of type typ.
func (e *env) storedOf(t *testing.T, typ string) []event.Event {
	t.Helper()
	evs, _, err := e.st.Read(0, 1000, store.Filter{TypePrefix: typ})
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
	return evs
}

func actions(tl []alarm.Entry) []string {
	var out []string
	for _, e := range tl {
		out = append(out, e.Action)
	}
	return out
}

// metric is the value of a gauge, counter (or histogram's count) with the
// given labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return testenv.MetricValue(t, reg, name, labels)
}
