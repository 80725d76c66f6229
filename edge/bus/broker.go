// Package bus is the gateway's MQTT layer: an embedded broker (mochi-mqtt)
// whose accepted QoS 1 messages survive kill -9, and the gateway's client
// (paho) with persistent session and manual acknowledgements.
package bus

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/promscope"
)

// Credentials are a username and password (never logged).
type Credentials struct{ Username, Password string }

// BrokerOptions configure the embedded broker.
type BrokerOptions struct {
	Listen         string // "127.0.0.1:1883"; "127.0.0.1:0" picks a free port
	AllowAnonymous bool
	Users          []config.MQTTUser // bcrypt password_hash
	ACL            []config.ACLRule
	// Internal is the gateway's own client: full access, the only one
	// allowed to write command topics and warden/#.
	Internal Credentials
	// TrustAnonymous gives anonymous clients Internal's rights (tests and
	// demos only; config has no key for it). Needs AllowAnonymous.
	TrustAnonymous bool
	// MaxInflight is mochi's per-client QoS 1 window, which is also the
	// queue of an offline persistent session (max 65535). Beyond it mochi
	// drops QoS 1 messages silently (counted in
	// warden_mqtt_broker_dropped_total{reason="inflight"}). 0 = 65535.
	MaxInflight int
	// PersistPath is the bbolt file for sessions, subscriptions, inflight
	// and retained messages ("" = memory only).
	PersistPath string
	// Reserved client ids (the gateway's own) may be used by Internal only.
	Reserved []string
	// Commands is the command space: topics no device account may write
	// (nil = the generic forms of drivers.IsCommandTopic). CommandUsers
	// may write them anyway, except warden/#.
	Commands     *drivers.CommandSpace
	CommandUsers []string
	// MaxPacketBytes bounds every packet (0 = config.DefaultMaxPacket);
	// MaxClients caps connected clients (0 = config.DefaultMaxClients);
	// ConnectTimeout bounds the wait for CONNECT (0 = 10s).
	MaxPacketBytes int
	MaxClients     int
	ConnectTimeout time.Duration
	// Inline, when set, hands publishes on its topics to the gateway inside
	// the broker and PUBACKs them only after Handle returns nil (device
	// ingest without a subscriber hop; see README.md, "Inline ingest").
	Inline     *Inline
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Broker is a running embedded broker.
type Broker struct {
	srv      *mqtt.Server
	tcp      *guardedTCP
	store    *storeHook
	takeover *takeoverHook
	log      *slog.Logger
	scope    *promscope.Scope
	once     sync.Once
	closeErr error
}

// StartBroker starts the broker and returns once it accepts connections.
func StartBroker(opts BrokerOptions) (_ *Broker, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "mqtt-broker")
	if opts.Listen == "" {
		opts.Listen = config.DefaultMQTTListen
	}
	inflight := opts.MaxInflight
	if inflight <= 0 || inflight > 65535 {
		inflight = 65535
	}
	users := make(map[string][]byte, len(opts.Users))
	for _, u := range opts.Users {
		if u.Username == "" || u.PasswordHash == "" {
			return nil, fmt.Errorf("mqtt broker: user %q: username and password_hash are required", u.Username)
		}
		if _, err := bcryptCost(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("mqtt broker: user %q: password_hash is not bcrypt: %w", u.Username, err)
		}
		users[u.Username] = []byte(u.PasswordHash)
	}

	// Close (or a failed start) takes the metrics back, so a broker
	// restarted in the same process registers them again.
	scope := promscope.New(opts.Registerer)
	defer func() {
		if err != nil {
			scope.Close()
		}
	}()
	m := newBrokerMetrics(promauto.With(scope))
	var persistErrs atomic.Int64
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true, // used to replay pending publishes after a crash
		Logger:       log,
		Capabilities: brokerCaps(inflight, cmp.Or(opts.MaxPacketBytes, config.DefaultMaxPacket), cmp.Or(opts.MaxClients, config.DefaultMaxClients)),
	})
	access := &accessHook{
		server: srv, anonymous: opts.AllowAnonymous, users: users, acl: opts.ACL,
		internal: opts.Internal, trustAnon: opts.TrustAnonymous && opts.AllowAnonymous,
		reserved: map[string]bool{}, commands: opts.Commands, cmdUsers: map[string]bool{},
		authFail: m.authFail, idRefuse: m.idRefused, denied: m.denied,
	}
	for _, id := range opts.Reserved {
		access.reserved[id] = true
	}
	for _, u := range opts.CommandUsers {
		access.cmdUsers[u] = true
	}
	if err := srv.AddHook(access, nil); err != nil {
		return nil, fmt.Errorf("mqtt broker: access hook: %w", err)
	}
	order := &orderHook{}
	if err := srv.AddHook(order, nil); err != nil {
		return nil, fmt.Errorf("mqtt broker: order hook: %w", err)
	}
	b := &Broker{srv: srv, log: log}
	var extra []prometheus.Collector
	if opts.Inline != nil && opts.Inline.Handle != nil {
		// before the store hook: a refused publish writes nothing there
		in := newInlineHook(*opts.Inline, log)
		in.server = srv
		if err := srv.AddHook(in, nil); err != nil {
			return nil, fmt.Errorf("mqtt broker: inline hook: %w", err)
		}
		extra = append(extra, in.refused)
	}
	takeover := &takeoverHook{server: srv, log: log}
	if opts.PersistPath != "" {
		st, err := openStore(opts.PersistPath, log, func() { persistErrs.Add(1) })
		if err == nil {
			st.internal = opts.Internal.Username
			st.commands = opts.Commands
		}
		if err != nil {
			return nil, fmt.Errorf("mqtt broker: %w", err)
		}
		st.server = srv
		st.seed = order.seed
		takeover.persist = st.putInflight
		if err := srv.AddHook(st, nil); err != nil {
			_ = st.Stop()
			return nil, fmt.Errorf("mqtt broker: store hook: %w", err)
		}
		b.store = st
	}
	if err := srv.AddHook(takeover, nil); err != nil {
		b.stopStore()
		return nil, fmt.Errorf("mqtt broker: takeover hook: %w", err)
	}
	b.takeover = takeover
	if err := srv.AddHook(&dropHook{}, nil); err != nil {
		return nil, fmt.Errorf("mqtt broker: drop hook: %w", err)
	}
	b.tcp = newGuardedTCP(opts.Listen, cmp.Or(opts.ConnectTimeout, config.DefaultConnectTimeout), m.refused, log)
	if err := srv.AddListener(b.tcp); err != nil {
		b.stopStore()
		return nil, fmt.Errorf("mqtt broker: listen %s: %w", opts.Listen, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt broker: serve: %w", err)
	}
	if b.store != nil {
		n, err := b.store.replayPending(srv)
		if err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("mqtt broker: %w", err)
		}
		if n > 0 {
			log.Warn("re-published messages accepted before a crash", "count", n)
		}
	}
	scope.MustRegister(extra...)
	promauto.With(scope).NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_mqtt_broker_takeover_rescued_total",
		Help: "QoS>0 messages routed to a persistent session while a reconnect took it over, moved to the new connection.",
	}, func() float64 { return float64(takeover.rescued.Load()) })
	m.register(promauto.With(scope), srv, &persistErrs)
	b.scope = scope
	log.Info("mqtt broker listening", "addr", b.Addr(), "persist", opts.PersistPath != "", "max_inflight", inflight)
	return b, nil
}

func brokerCaps(inflight, maxPacket, maxClients int) *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	// Checked on the fixed header, before mochi allocates the packet: a
	// stranger announcing 250 MiB is closed without a byte read.
	c.MaximumPacketSize = uint32(maxPacket)
	c.MaximumClients = int64(maxClients)
	c.MaximumInflight = uint16(inflight)
	// Pending writes per client: at the default 8192 a burst to a slow
	// subscriber is dropped (MessagesDropped); raise it with the window.
	c.MaximumClientWritesPending = int32(inflight)
	// The default (24 h) silently deletes inflight messages (the offline
	// gateway's queue) and retained messages (device state, warden status)
	// older than a day. 0 = never.
	c.MaximumMessageExpiryInterval = 0
	return c
}

// PublishNoWait publishes from inside the broker (mochi's inline client):
// straight to the subscribers' connections, with no TCP hop, no PUBACK to
// wait for and no write to the broker's file before delivery. The gateway's
// actuator commands take this path, so a full disk or a hijacked client id
// cannot hold them back.
func (b *Broker) PublishNoWait(topic string, qos byte, retain bool, payload []byte) {
	if err := b.Publish(context.Background(), topic, qos, retain, payload); err != nil {
		b.log.Error("in-process publish failed", "error", err)
	}
}

// Publish is PublishNoWait for callers that handle errors (the event
// mirror, rules): it returns when the message is in every subscriber's
// queue (and, for persistent sessions, queued for their file).
func (b *Broker) Publish(_ context.Context, topic string, qos byte, retain bool, payload []byte) error {
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("mqtt broker: publish %s: %w", topic, err)
	}
	return nil
}

// Healthy is nil unless the broker's own file is failing its commits.
func (b *Broker) Healthy() error {
	if b.store == nil {
		return nil
	}
	return b.store.Healthy()
}

// Addr is the actual host:port the broker listens on.
func (b *Broker) Addr() string { return b.tcp.Address() }

// Close stops the broker, flushing persisted state. It is idempotent.
func (b *Broker) Close() error {
	b.once.Do(func() {
		b.closeErr = b.srv.Close()
		if b.scope != nil {
			b.scope.Close()
		}
	})
	return b.closeErr
}

// stopStore closes the store without starting the server.
func (b *Broker) stopStore() {
	if b.store != nil {
		_ = b.store.Stop()
	}
}

// closeLikeKill closes the broker while dropping every store write that is
// not yet committed, as kill -9 would (tests).
func (b *Broker) closeLikeKill() {
	if b.store != nil {
		b.store.stopLikeKill()
	}
	_ = b.Close()
}

// orderHook keeps redelivery in publish order. mochi resends a session's
// inflight messages (also the queue of an offline client) sorted by
// uint16(Packet.Created), which is Unix seconds: messages of the same second
// come back in random order. Created is replaced by a broker-wide counter;
// with MaximumMessageExpiryInterval 0 mochi uses it for nothing else. Order
// is only lost when a session's inflight set spans a wrap of the 16-bit
// counter.
type orderHook struct {
	mqtt.HookBase
	next atomic.Int64
}

func (h *orderHook) ID() string            { return "warden-order" }
func (h *orderHook) Provides(b byte) bool  { return b == mqtt.OnPublish }
func (h *orderHook) seed(maxCreated int64) { h.next.Store(maxCreated) }
func (h *orderHook) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos > 0 {
		pk.Created = h.next.Add(1) & 0xffff
	}
	return pk, nil
}

// dropHook logs messages mochi drops because a client's write queue is full
// (counted from Info.MessagesDropped).
type dropHook struct{ mqtt.HookBase }

func (h *dropHook) ID() string { return "warden-drops" }
func (h *dropHook) Provides(b byte) bool {
	return b == mqtt.OnPublishDropped
}
func (h *dropHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.Log.Warn("mqtt message dropped: client write queue full", "client", cl.ID, "topic", pk.TopicName)
}

type brokerMetrics struct {
	authFail  prometheus.Counter
	idRefused *prometheus.CounterVec
	refused   *prometheus.CounterVec
	denied    *prometheus.CounterVec
}

func newBrokerMetrics(f promauto.Factory) *brokerMetrics {
	return &brokerMetrics{
		authFail: f.NewCounter(prometheus.CounterOpts{
			Name: "warden_mqtt_auth_failures_total", Help: "MQTT connections refused by authentication.",
		}),
		idRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mqtt_client_id_refused_total", Help: "MQTT connections refused for their client id: reserved for the gateway, or a session of another user.",
		}, []string{"reason"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mqtt_connections_refused_total", Help: "MQTT connections closed before or while connecting: too many waiting to send CONNECT (handshakes), no CONNECT in time (timeout), a packet over max_packet_bytes.",
		}, []string{"reason"}),
		denied: f.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mqtt_acl_denied_total", Help: "MQTT publishes (write) and deliveries/subscriptions (read) denied by the ACL, and retained commands refused (retain).",
		}, []string{"action"}),
	}
}

// register adds the gauges read from mochi's counters once the server runs.
func (m *brokerMetrics) register(f promauto.Factory, srv *mqtt.Server, persistErrs *atomic.Int64) {
	info := srv.Info
	const droppedHelp = "QoS>0 messages the broker dropped (inflight window full or client write queue full)."
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_mqtt_broker_dropped_total", Help: droppedHelp, ConstLabels: prometheus.Labels{"reason": "inflight"},
	}, func() float64 { return float64(atomic.LoadInt64(&info.InflightDropped)) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_mqtt_broker_dropped_total", Help: droppedHelp, ConstLabels: prometheus.Labels{"reason": "write_queue"},
	}, func() float64 { return float64(atomic.LoadInt64(&info.MessagesDropped)) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_mqtt_broker_clients_connected", Help: "Clients connected to the embedded broker.",
	}, func() float64 { return float64(atomic.LoadInt64(&info.ClientsConnected)) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "warden_mqtt_broker_inflight_messages", Help: "QoS>0 messages awaiting acknowledgement in the embedded broker.",
	}, func() float64 { return float64(atomic.LoadInt64(&info.Inflight)) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Name: "warden_mqtt_broker_persist_errors_total", Help: "Failed commits to the broker's persistence file.",
	}, func() float64 { return float64(persistErrs.Load()) })
}
