package bus

import (
	"log/slog"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Inline lets the embedded broker hand publishes on some topics straight to
// the gateway (device ingest) instead of routing them to a subscriber: the
// handler runs inside mochi's OnPublish, before the PUBACK, so a QoS 1
// publish is acknowledged only once Handle has returned nil (committed).
// See README.md, "Inline ingest".
type Inline struct {
	// Filters select the topics (MQTT filters, + and # allowed).
	Filters []string
	// Handle is called from the publishing client's connection goroutine,
	// concurrently for different clients, and blocks that client until it
	// returns. An error refuses the publish: no PUBACK, and the client is
	// disconnected so that it sends the message again.
	Handle func(InlineMessage) error
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

type inlineHook struct {
	mqtt.HookBase
	in      Inline
	server  *mqtt.Server
	log     *slog.Logger
	limit   *rate.Limiter
	refused prometheus.Counter
}

func newInlineHook(in Inline, log *slog.Logger) *inlineHook {
	return &inlineHook{
		in: in, log: log, limit: rate.NewLimiter(rate.Every(time.Second), 5),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_mqtt_inline_refused_total",
			Help: "Publishes the embedded broker refused (no PUBACK, client disconnected) because inline ingest could not commit them.",
		}),
	}
}

func (h *inlineHook) ID() string           { return "warden-inline" }
func (h *inlineHook) Provides(b byte) bool { return b == mqtt.OnPublish }

func (h *inlineHook) wants(topic string) bool {
	for _, f := range h.in.Filters {
		if matchFilter(f, topic) {
			return true
		}
	}
	return false
}

func (h *inlineHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !h.wants(pk.TopicName) {
		return pk, nil
	}
	err := h.in.Handle(InlineMessage{
		ClientID: cl.ID, Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Retain: pk.FixedHeader.Retain,
		// the inline client only replays pending records after a crash
		Dup:      pk.FixedHeader.Dup || cl.Net.Inline,
		Received: time.Now(),
	})
	if err == nil {
		return pk, nil
	}
	h.refused.Inc()
	if h.limit.Allow() {
		h.log.Warn("publish refused: not committed; disconnecting the client so it resends", "client", cl.ID, "topic", pk.TopicName, "error", err)
	}
	if !cl.Net.Inline && h.server != nil {
		// An MQTT 3.1.1 client only resends an unacknowledged publish after
		// a reconnect.
		_ = h.server.DisconnectClient(cl, packets.ErrUnspecifiedError)
	}
	return pk, packets.ErrRejectPacket
}

// matchFilter reports whether an MQTT topic filter matches a topic name.
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "#") || strings.HasPrefix(filter, "+")) {
		return false // [MQTT-4.7.2-1]
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a"
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
