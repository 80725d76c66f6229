package uplink

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/store"
)

// Kind is one kind of uplink target (http, mqtt, gat1400). Its package
// registers it from init; edge/uplink/all links every kind in.
type Kind struct {
	Name string
	// Order is the start order, and the order in /readyz.
	Order int
	// New builds the target when the uplink config names it, else returns
	// nil, nil. It may make several queues (the HTTP target's media), each
	// with its runner; the uplink runs them all and stops them together.
	New func(e *Env) ([]Runner, error)
	// Options is the zero value of its config section's type
	// (config.UplinkHTTP), and Sample that section with every key (the
	// folder's sample.yaml); a test holds the two and configs/warden.yaml
	// to the same keys.
	Options any
	Sample  []byte
}

// Runner delivers until ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

var (
	kindsMu sync.Mutex
	kinds   []Kind
)

// Register adds a target kind; a second kind of the same name panics.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if k.Name == "" || k.New == nil {
		panic("uplink: Register needs a name and New")
	}
	for _, o := range kinds {
		if o.Name == k.Name {
			panic(fmt.Sprintf("uplink: target kind %q registered twice", k.Name))
		}
	}
	kinds = append(kinds, k)
	slices.SortStableFunc(kinds, func(a, b Kind) int { return a.Order - b.Order })
}

// Kinds lists the registered kinds in start order.
func Kinds() []Kind {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	return slices.Clone(kinds)
}

// Env is what a target's package gets from the uplink: the gateway's
// identity, the uplink config, the store, metrics and constructors.
type Env struct {
	Gateway, Site string
	Config        config.Uplink
	Store         *store.Store
	// Sealed reads a picture kept outside the event store (nil: none).
	Sealed func(url string) ([]byte, error)
	// Location is the time zone of times a platform wants local.
	Location *time.Location
	// Metrics registers the target's own metrics with the uplink's.
	Metrics promauto.Factory
	// Client is Options.HTTPClient: the tests' client for every request
	// (nil: each target builds its own).
	Client *http.Client

	u *Uplink
}

// NewTarget makes an event target: a durable cursor named name, whose
// undelivered critical events retention keeps.
func (e *Env) NewTarget(name, kind string) (*Target, error) {
	t, err := e.u.newTarget(name, kind)
	if err == nil {
		e.u.targets = append(e.u.targets, t)
	}
	return t, err
}

// NewQueue makes a queue that follows the log beside a target (media
// uploads): its status comes last and it protects nothing from retention.
func (e *Env) NewQueue(name, kind string) (*Target, error) {
	t, err := e.u.newTarget(name, kind)
	if err == nil {
		e.u.queues = append(e.u.queues, t)
	}
	return t, err
}

// HTTPClient is Client when set, or a client with tls and the request
// timeout (default 30s).
func (e *Env) HTTPClient(tls config.TLS, timeout time.Duration) (*http.Client, error) {
	if e.Client != nil {
		return e.Client, nil
	}
	cfg, err := TLSConfig(tls)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// Origin is the origin of an event the uplink raises about id.
func (e *Env) Origin(id string) event.Origin { return e.u.origin(id) }

const defaultHTTPTimeout = 30 * time.Second
