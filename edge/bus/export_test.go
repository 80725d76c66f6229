package bus

import (
	"log/slog"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/smartcommunity/warden/drivers"
)

// CloseLikeKill closes b dropping uncommitted store writes, as kill -9 would.
func CloseLikeKill(b *Broker) { b.closeLikeKill() }

// MatchFilter exposes the MQTT filter matcher.
var MatchFilter = drivers.MatchFilter

// SeedRetained writes a retained message straight into a broker file, as an
// older version (or a hand edit) may have left it.
func SeedRetained(path, topic string, payload []byte) error {
	h, err := openStore(path, slog.New(slog.DiscardHandler), func() {})
	if err != nil {
		return err
	}
	pk := packets.Packet{TopicName: topic, Payload: payload, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}}
	h.put(true, retainedKey(topic), toMessage(retainedKey(topic), storage.RetainedKey, "old-client", pk, 0))
	return h.Stop()
}
