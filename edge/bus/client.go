package bus

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/edge/promscope"
)

// ClientOptions configure the gateway's MQTT client.
type ClientOptions struct {
	URL      string // tcp://127.0.0.1:1883 (also ssl://, mqtts://, mqtt://)
	ClientID string // fixed: the session is persistent (CleanSession=false)
	Username string
	Password string
	TLS      *tls.Config
	// StatusTopic (warden/<gw>/status) gets "online" retained on every
	// connect and "offline" retained as last will and on Close.
	StatusTopic string
	// Subscriptions are subscribed at QoS 1 on every (re)connect.
	Subscriptions []string
	// Unsubscribe are filters removed on every (re)connect, before
	// Subscriptions: a persistent session from an older version may still
	// hold them (device topics, now ingested inside the embedded broker).
	Unsubscribe []string
	// OnMessage is called in arrival order from one goroutine. It must
	// return quickly (hand off) and m.Ack() must be called once the message
	// is committed; unacked messages are redelivered after a reconnect.
	OnMessage func(*Message)
	Logger    *slog.Logger
	// Registerer takes the client's metrics until Close (nil = none).
	Registerer prometheus.Registerer
}

// Message is one received MQTT message.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Dup      bool
	Retained bool
	Received time.Time
	ack      func()
}

// Ack sends the PUBACK. Call it only after the message is committed; extra
// calls do nothing. An ack whose connection dropped is lost and the broker
// redelivers the message (Dup=true): consumers must tolerate duplicates.
func (m *Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// Client is the gateway's MQTT client. It reconnects by itself.
type Client struct {
	c      paho.Client
	opts   ClientOptions
	log    *slog.Logger
	m      *clientMetrics
	once   sync.Once
	closed atomic.Bool
	everOn atomic.Bool
	ready  chan struct{} // closed after the first connect's subscriptions
	rOnce  sync.Once
}

// Connect is NewClient then Client.Connect.
func Connect(ctx context.Context, opts ClientOptions) (*Client, error) {
	cl, err := NewClient(opts)
	if err != nil {
		return nil, err
	}
	if err := cl.Connect(ctx); err != nil {
		return nil, err
	}
	return cl, nil
}

// NewClient builds a client without connecting it, so an assembly can
// hand it to its users before anything runs.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.URL == "" || opts.ClientID == "" {
		return nil, errors.New("mqtt client: url and client id are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mqtt-client", "broker", opts.URL, "client_id", opts.ClientID)
	cl := &Client{opts: opts, log: log, m: newClientMetrics(promscope.New(opts.Registerer)), ready: make(chan struct{})}

	po := paho.NewClientOptions().
		AddBroker(opts.URL).
		SetClientID(opts.ClientID).
		SetUsername(opts.Username).
		SetPassword(opts.Password).
		SetProtocolVersion(4). // no silent fallback to 3.1 (it doubles auth failures)
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(false). // the first connect is retried below, so errors surface
		SetOrderMatters(true).
		SetStore(newCopyStore()).
		SetAutoAckDisabled(true).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		SetMessageChannelDepth(1024).
		// queued session messages arrive right after CONNACK, before any
		// Subscribe: only a default handler sees them.
		SetDefaultPublishHandler(cl.onMessage).
		SetOnConnectHandler(cl.onConnect).
		SetConnectionLostHandler(cl.onLost).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			cl.m.reconnects.Inc()
		})
	if opts.TLS != nil {
		po.SetTLSConfig(opts.TLS)
	}
	if opts.StatusTopic != "" {
		po.SetWill(opts.StatusTopic, "offline", 1, true)
	}
	cl.c = paho.NewClient(po)
	return cl, nil
}

// Connect returns after the first successful connection, or when ctx ends,
// or at once when the broker refuses the credentials. Later connection
// losses are repaired in the background.
func (c *Client) Connect(ctx context.Context) error {
	opts, log := c.opts, c.log
	delay := 200 * time.Millisecond
	for {
		tok := c.c.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			c.c.Disconnect(0)
			return fmt.Errorf("mqtt client %s: connect: %w", opts.URL, ctx.Err())
		}
		err := tok.Error()
		if err == nil {
			select {
			case <-c.ready:
				return nil
			case <-ctx.Done():
				c.c.Disconnect(0)
				return fmt.Errorf("mqtt client %s: subscribe: %w", opts.URL, ctx.Err())
			}
		}
		if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) ||
			errors.Is(err, packets.ErrorRefusedIDRejected) {
			return fmt.Errorf("mqtt client %s: connect as %q: %w", opts.URL, opts.Username, err)
		}
		log.Warn("mqtt connect failed, retrying", "error", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("mqtt client %s: connect: %w (last error: %v)", opts.URL, ctx.Err(), err)
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (c *Client) onConnect(pc paho.Client) {
	c.m.connected.Set(1)
	if c.everOn.Swap(true) {
		c.log.Info("mqtt reconnected")
	} else {
		c.log.Info("mqtt connected")
	}
	// paho runs this in its own goroutine, so it may wait for acks.
	func() {
		defer c.rOnce.Do(func() { close(c.ready) })
		if len(c.opts.Unsubscribe) > 0 {
			tok := pc.Unsubscribe(c.opts.Unsubscribe...)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				c.log.Error("mqtt unsubscribe failed", "filters", c.opts.Unsubscribe, "error", tok.Error())
			}
		}
		if len(c.opts.Subscriptions) > 0 {
			filters := make(map[string]byte, len(c.opts.Subscriptions))
			for _, f := range c.opts.Subscriptions {
				filters[f] = 1
			}
			tok := pc.SubscribeMultiple(filters, nil)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				c.log.Error("mqtt subscribe failed", "filters", c.opts.Subscriptions, "error", tok.Error())
			}
		}
		if c.opts.StatusTopic != "" && !c.closed.Load() {
			tok := pc.Publish(c.opts.StatusTopic, 1, true, "online")
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				c.log.Warn("mqtt status publish failed", "error", tok.Error())
			}
		}
	}()
}

func (c *Client) onLost(_ paho.Client, err error) {
	c.m.connected.Set(0)
	c.log.Warn("mqtt connection lost", "error", err)
}

func (c *Client) onMessage(_ paho.Client, pm paho.Message) {
	c.m.in.Inc()
	m := &Message{
		Topic: pm.Topic(), Payload: pm.Payload(), QoS: pm.Qos(), Dup: pm.Duplicate(),
		Retained: pm.Retained(), Received: time.Now(), ack: pm.Ack,
	}
	if c.opts.OnMessage == nil {
		m.Ack()
		return
	}
	c.opts.OnMessage(m)
}

// Publish sends a message; with QoS > 0 it waits for the broker's ack or ctx.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	tok := c.c.Publish(topic, qos, retain, payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("mqtt publish %s: %w", topic, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt publish %s: %w", topic, err)
	}
	c.m.out.Inc()
	return nil
}

// PublishNoWait queues a message and returns at once (actuator commands:
// paho keeps it in its session store and sends it when connected).
func (c *Client) PublishNoWait(topic string, qos byte, retain bool, payload []byte) {
	tok := c.c.Publish(topic, qos, retain, payload)
	go func() {
		<-tok.Done()
		if err := tok.Error(); err != nil {
			c.log.Warn("mqtt publish failed", "topic", topic, "error", err)
			return
		}
		c.m.out.Inc()
	}()
}

// Connected reports whether the connection is up now.
func (c *Client) Connected() bool { return c.c.IsConnectionOpen() }

// Close publishes "offline" (retained) and disconnects cleanly. Idempotent.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		if c.opts.StatusTopic != "" && c.c.IsConnectionOpen() {
			if perr := c.Publish(ctx, c.opts.StatusTopic, 1, true, []byte("offline")); perr != nil {
				err = perr
			}
		}
		c.c.Disconnect(250)
		c.m.connected.Set(0)
		c.m.scope.Close()
		c.log.Info("mqtt disconnected")
	})
	return err
}

type clientMetrics struct {
	scope      *promscope.Scope
	in, out    prometheus.Counter
	connected  prometheus.Gauge
	reconnects prometheus.Counter
}

// newClientMetrics registers the client's metrics; Close takes them back,
// so a client made again on the same registry registers them anew.
func newClientMetrics(scope *promscope.Scope) *clientMetrics {
	f := promauto.With(scope)
	msgs := f.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_mqtt_messages_total", Help: "MQTT messages received (in) and published (out) by the gateway client.",
	}, []string{"direction"})
	return &clientMetrics{
		scope: scope,
		in:    msgs.WithLabelValues("in"), out: msgs.WithLabelValues("out"),
		connected: f.NewGauge(prometheus.GaugeOpts{
			Name: "warden_mqtt_connected", Help: "1 when the gateway's MQTT client is connected.",
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_mqtt_reconnects_total", Help: "MQTT reconnect attempts of the gateway client.",
		}),
	}
}

// copyStore is paho's MemoryStore holding private copies: paho v1.5.1 keeps
// the same packet object in its store and on the wire, and on reconnect its
// resume encodes it and sets Dup while the outgoing goroutine may still be
// encoding it (a data race inside paho).
type copyStore struct {
	*paho.MemoryStore
	mu *sync.Mutex
}

func newCopyStore() copyStore { return copyStore{paho.NewMemoryStore(), new(sync.Mutex)} }

func clonePacket(p packets.ControlPacket) packets.ControlPacket {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return p
	}
	cp, err := packets.ReadPacket(&buf)
	if err != nil {
		return p
	}
	return cp
}

func (s copyStore) Put(key string, p packets.ControlPacket) {
	s.MemoryStore.Put(key, clonePacket(p))
}

func (s copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.MemoryStore.Get(key)
	if p == nil {
		return nil
	}
	return clonePacket(p)
}
