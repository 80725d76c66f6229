// Package uplink forwards the event log to the community platform: each
// target (HTTP, MQTT) keeps a durable cursor into the store and delivers
// events in seq order, at least once, retrying forever with backoff. Media
// named by delivered events follow on a separate, lower-priority queue.
// Events are never copied into a second queue: the store is the queue.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/promscope"
	"github.com/smartcommunity/warden/edge/store"
)

// Options configure an Uplink. Store is required.
type Options struct {
	Gateway    string
	Site       string
	Config     config.Uplink
	Store      *store.Store
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil = no metrics registered
	// HTTPClient replaces the client built from Config (timeout, TLS) for
	// events and media; tests use it.
	HTTPClient *http.Client
	// Sealed reads a picture an event names outside the event store (an
	// unknown face's crop, sealed by the gallery); nil = none readable.
	Sealed func(url string) ([]byte, error)
	// Location is the time zone of GA/T 1400 times (default time.Local).
	Location *time.Location
	// StorageCheck is how often the store's over-budget state is polled
	// (default 1s).
	StorageCheck time.Duration
}

// Cursor names in the store.
const (
	cursorPrefix = "uplink:"
	defaultBatch = 200
	defaultMin   = time.Second
	defaultMax   = time.Minute
)

// Uplink runs every configured target and the media queue.
type Uplink struct {
	o       Options
	log     *slog.Logger
	st      *store.Store
	m       *metrics
	env     *Env
	targets []*Target // event targets: http, mqtt, gat1400
	queues  []*Target // queues beside them (the HTTP target's media)
	runners []func(context.Context) error

	full      atomic.Bool
	fullMu    sync.Mutex
	fullSince time.Time
}

// TargetStatus is one target's state for /readyz and the API.
type TargetStatus struct {
	Name          string    `json:"name"`
	Kind          string    `json:"kind"` // http, mqtt, gat1400, media
	Cursor        uint64    `json:"cursor"`
	BacklogEvents uint64    `json:"backlog_events"`
	Delivered     uint64    `json:"delivered"`
	DeadLettered  uint64    `json:"dead_lettered"`
	Retrying      bool      `json:"retrying"`
	LastSuccess   time.Time `json:"last_success,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// New builds the uplink and loads the targets' cursors, so Protect is
// right before Run starts. A config without targets gives an idle uplink.
func New(o Options) (_ *Uplink, err error) {
	if o.Store == nil {
		return nil, errors.New("uplink: store is nil")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StorageCheck <= 0 {
		o.StorageCheck = time.Second
	}
	c := &o.Config
	if c.Batch <= 0 {
		c.Batch = defaultBatch
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = config.Duration(defaultMin)
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = config.Duration(max(defaultMax, c.MinBackoff.D()))
	}
	u := &Uplink{o: o, log: o.Logger.With("component", "uplink"), st: o.Store}
	// A target that fails to build takes the metrics back, so New can be
	// called again on the same registry.
	scope := promscope.New(o.Registerer)
	u.m = newMetrics(u, scope)
	defer func() {
		if err != nil {
			scope.Close()
		}
	}()
	u.env = &Env{Gateway: o.Gateway, Site: o.Site, Config: o.Config, Store: o.Store, Sealed: o.Sealed,
		Location: o.Location, Metrics: promauto.With(scope), Client: o.HTTPClient, u: u}
	ks := Kinds()
	if err := linked(c, ks); err != nil {
		return nil, err
	}
	for _, k := range ks {
		rs, err := k.New(u.env)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			u.runners = append(u.runners, r.Run)
		}
	}
	return u, nil
}

// linked fails when the config names a target no kind builds: such an
// uplink would deliver nothing, silently.
func linked(c *config.Uplink, ks []Kind) error {
	for _, name := range configured(c) {
		if !slices.ContainsFunc(ks, func(k Kind) bool { return k.Name == name }) {
			return fmt.Errorf("uplink: %s is configured but no %s target is linked into this binary (import edge/uplink/all)", name, name)
		}
	}
	return nil
}

// configured names the target sections the config has.
func configured(c *config.Uplink) []string {
	var out []string
	if c.HTTP != nil {
		out = append(out, "http")
	}
	if c.MQTT != nil {
		out = append(out, "mqtt")
	}
	if c.GAT1400 != nil {
		out = append(out, "gat1400")
	}
	return out
}

// Run delivers until ctx ends, then returns with no goroutine left.
func (u *Uplink) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(u.runners)+1)
	start := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	for _, r := range u.runners {
		start(r)
	}
	start(u.watchStorage)
	for _, t := range u.targets {
		u.log.Info("uplink target started", "target", t.name, "cursor", t.cursor.Load(), "last_seq", u.st.LastSeq())
	}
	wg.Wait()
	for _, t := range slices.Concat(u.targets, u.queues) {
		t.tail.Close()
	}
	close(errc)
	return <-errc // nil when ctx ended
}

// Protect is the lowest seq not yet delivered by every event target, for
// store.Options.Protect: critical events from it on are never evicted.
func (u *Uplink) Protect() uint64 {
	if u == nil || len(u.targets) == 0 {
		return math.MaxUint64
	}
	p := uint64(math.MaxUint64)
	for _, t := range u.targets {
		p = min(p, t.cursor.Load()+1)
	}
	return p
}

// Status reports every target, queues (media) last.
func (u *Uplink) Status() []TargetStatus {
	out := make([]TargetStatus, 0, len(u.targets)+len(u.queues))
	for _, t := range slices.Concat(u.targets, u.queues) {
		out = append(out, t.status())
	}
	return out
}

// Healthy is non-nil while the store is over its budget with only
// undelivered critical events left: new events are being evicted at once
// and the platform is not taking the backlog.
func (u *Uplink) Healthy() error {
	if !u.full.Load() {
		return nil
	}
	u.fullMu.Lock()
	since := u.fullSince
	u.fullMu.Unlock()
	var behind []string
	for _, t := range u.targets {
		if s := t.status(); s.BacklogEvents > 0 {
			behind = append(behind, fmt.Sprintf("%s %d events behind", t.name, s.BacklogEvents))
		}
	}
	return fmt.Errorf("uplink: event store full since %s: only undelivered critical events remain and they exceed the byte budget (%s)",
		since.UTC().Format(time.RFC3339), strings.Join(behind, ", "))
}

// watchStorage turns the store's over-budget state into the storage-full
// signal: one system.storage event per episode, a gauge, Healthy's error.
func (u *Uplink) watchStorage(ctx context.Context) error {
	if len(u.targets) == 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(u.o.StorageCheck)
	defer tick.Stop()
	for {
		over := u.st.OverBudget()
		switch was := u.full.Load(); {
		case over && !was:
			u.fullMu.Lock()
			u.fullSince = time.Now()
			u.fullMu.Unlock()
			u.full.Store(true)
			u.m.full.Set(1)
			st := u.st.Stats()
			u.log.Error("event store full: only undelivered critical events remain and they exceed the budget; new events are evicted at once",
				"bytes", st.Bytes, "critical_events", st.BySeverity[event.Critical], "protect_seq", u.Protect())
			ev := event.New(u.origin("store"), event.SystemStorage, map[string]any{
				"reason":            "uplink backlog of critical events exceeds the store budget",
				"reason_code":       "storage.uplink_backlog",
				"bytes":             st.Bytes,
				"critical_events":   st.BySeverity[event.Critical],
				"max_backlog_bytes": u.o.Config.MaxBacklogBytes,
				"undelivered_from":  u.Protect(),
			})
			if err := u.st.Append(ctx, ev); err != nil && ctx.Err() == nil {
				u.log.Error("could not record system.storage event", "err", err)
			}
		case !over && was:
			u.full.Store(false)
			u.m.full.Set(0)
			u.log.Info("event store back within budget")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (u *Uplink) origin(id string) event.Origin {
	return event.Origin{Gateway: u.o.Gateway, Site: u.o.Site, Source: event.Source{Kind: "uplink", ID: id}}
}
