package bus

import (
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/smartcommunity/warden/drivers"
)

// Inline lets the embedded broker hand publishes on some topics straight to
// the gateway (device ingest) instead of routing them to a subscriber. The
// handler runs from mochi's OnPublish, before any PUBACK: mochi is told to
// send nothing, and once the handler reports the message committed the
// publish is injected again (now passed through), so mochi PUBACKs it and
// routes it to any other subscriber exactly as before. Each connection keeps
// up to MaxPending publishes waiting for their commit, so one device's
// messages share group commits; PUBACKs leave in arrival order. See
// README.md, "Inline ingest".
type Inline struct {
	// Filters select the topics (MQTT filters, + and # allowed).
	Filters []string
	// Handle is called from the publishing client's connection goroutine in
	// arrival order, concurrently for different clients. It must call done
	// exactly once, from any goroutine, without blocking: nil = committed
	// (PUBACK now); an error refuses the publish: no PUBACK, and the client
	// is disconnected so that it sends the message again.
	Handle func(m InlineMessage, done func(error))
	// MaxPending bounds a connection's publishes waiting for done; beyond
	// it the connection is not read (backpressure). 0 = 1024.
	MaxPending int
}

// InlineMessage is one publish handed to Inline.Handle.
type InlineMessage struct {
	ClientID string
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	// Dup is the publisher's DUP flag. Publishes the broker replays after a
	// crash (pending records) come marked Dup too: they may have been
	// handled before.
	Dup      bool
	Received time.Time
}

// committedMark on Packet.Filters (unused by PUBLISH, never decoded from
// the wire) marks a publish injected again after its commit.
var committedMark = packets.Subscriptions{{Filter: "\x00warden-inline-committed"}}

type inlineHook struct {
	mqtt.HookBase
	in      Inline
	server  *mqtt.Server
	log     *slog.Logger
	limit   *rate.Limiter
	refused prometheus.Counter

	mu      sync.Mutex
	conns   map[*mqtt.Client]*inlineConn
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// inlineConn is one connection's publishes waiting for their commit.
type inlineConn struct {
	cl      *mqtt.Client
	slots   chan struct{} // semaphore of MaxPending
	wake    chan struct{}
	mu      sync.Mutex
	queue   []*inlinePub
	closing bool
}

type inlinePub struct {
	pk  packets.Packet
	res chan error
}

func newInlineHook(in Inline, log *slog.Logger) *inlineHook {
	if in.MaxPending <= 0 {
		in.MaxPending = 1024
	}
	return &inlineHook{
		in: in, log: log, limit: rate.NewLimiter(rate.Every(time.Second), 5),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_mqtt_inline_refused_total",
			Help: "Publishes the embedded broker refused (no PUBACK, client disconnected) because inline ingest could not commit them.",
		}),
		conns: map[*mqtt.Client]*inlineConn{},
		stop:  make(chan struct{}),
	}
}

func (h *inlineHook) ID() string { return "warden-inline" }
func (h *inlineHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnDisconnect
}

func (h *inlineHook) wants(topic string) bool {
	for _, f := range h.in.Filters {
		if drivers.MatchFilter(f, topic) {
			return true
		}
	}
	return false
}

func (h *inlineHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if len(pk.Filters) == 1 && pk.Filters[0].Filter == committedMark[0].Filter {
		pk.Filters = nil
		return pk, nil // committed: let mochi PUBACK and route it
	}
	if !h.wants(pk.TopicName) {
		return pk, nil
	}
	m := InlineMessage{
		ClientID: cl.ID, Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Retain: pk.FixedHeader.Retain, Dup: pk.FixedHeader.Dup, Received: time.Now(),
	}
	if cl.Net.Inline {
		// The inline client only replays pending records after a crash:
		// they may have been handled before. It is rare: wait here.
		m.Dup = true
		res := make(chan error, 1)
		h.in.Handle(m, func(err error) { res <- err })
		if err := <-res; err != nil {
			h.refused.Inc()
			h.log.Error("replayed publish not committed", "topic", pk.TopicName, "error", err)
			return pk, packets.ErrRejectPacket
		}
		return pk, nil
	}
	c := h.conn(cl)
	if c == nil {
		return pk, packets.ErrRejectPacket // broker stopping: no PUBACK
	}
	p := &inlinePub{pk: pk, res: make(chan error, 1)}
	select {
	case c.slots <- struct{}{}:
	case <-h.stop:
		return pk, packets.ErrRejectPacket
	}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	signal(c.wake)
	h.in.Handle(m, func(err error) { p.res <- err })
	// mochi sends nothing now; the connection's sender injects it again
	// once committed.
	return pk, packets.ErrRejectPacket
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (h *inlineHook) conn(cl *mqtt.Client) *inlineConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil
	}
	c := h.conns[cl]
	if c == nil {
		c = &inlineConn{cl: cl, slots: make(chan struct{}, h.in.MaxPending), wake: make(chan struct{}, 1)}
		h.conns[cl] = c
		h.wg.Add(1)
		go h.send(c)
	}
	return c
}

// send PUBACKs (by injecting again) a connection's publishes in arrival
// order as their commits complete. After a refusal it only drains: the
// client is disconnected and resends everything not acknowledged (DUP; the
// ones committed meanwhile are deduplicated by ingest).
func (h *inlineHook) send(c *inlineConn) {
	defer h.wg.Done()
	failed := false
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closing := c.closing
			c.mu.Unlock()
			if closing {
				return
			}
			<-c.wake
			continue
		}
		p := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		err := <-p.res
		<-c.slots
		switch {
		case failed || c.cl.Closed():
		case err != nil:
			failed = true
			h.refused.Inc()
			if h.limit.Allow() {
				h.log.Warn("publish refused: not committed; disconnecting the client so it resends", "client", c.cl.ID, "topic", p.pk.TopicName, "error", err)
			}
			// An MQTT 3.1.1 client only resends an unacknowledged publish
			// after a reconnect.
			_ = h.server.DisconnectClient(c.cl, packets.ErrUnspecifiedError)
		default:
			p.pk.Filters = committedMark
			if err := h.server.InjectPacket(c.cl, p.pk); err != nil {
				failed = true // connection gone: the client resends
			}
		}
	}
}

// OnDisconnect ends the connection's sender once its queue is drained.
func (h *inlineHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	c := h.conns[cl]
	delete(h.conns, cl)
	h.mu.Unlock()
	if c != nil {
		c.close()
	}
}

func (c *inlineConn) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	signal(c.wake)
}

// Stop ends every sender after its pending commits are reported.
func (h *inlineHook) Stop() error {
	h.mu.Lock()
	if !h.stopped {
		h.stopped = true
		close(h.stop)
	}
	conns := h.conns
	h.conns = map[*mqtt.Client]*inlineConn{}
	h.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	h.wg.Wait()
	return nil
}
