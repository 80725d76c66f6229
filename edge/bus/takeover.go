package bus

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// takeoverHook rescues QoS 1 messages that mochi routes to a persistent
// session while a reconnect takes it over. inheritClientSession marks the
// old client taken over, clones its inflight map into the new client and
// clears the old one; the new client replaces the old one in the client map
// only after that. A publisher that looked the old client up before the
// swap stores its message in the old client's inflight map after the clone:
// the message is never delivered although the publisher got its PUBACK
// (seen as one missing event in TestMQTTBrokerStopMidStream/embedded).
//
// OnQosPublish on a taken-over client finds the new client, and if the clone
// lacks the message, it adds it there under a free packet id, persists it
// and sends it once the new session has resent the inherited inflight
// messages (OnSessionEstablished). It runs in the publisher's goroutine, so
// that publisher's later messages are routed after it: order is kept.
type takeoverHook struct {
	mqtt.HookBase
	server *mqtt.Server
	log    *slog.Logger
	// persist stores an inflight record; the store hook leaves taken-over
	// clients' records to this hook. nil = memory only.
	persist func(cl *mqtt.Client, pk packets.Packet)
	rescued atomic.Int64
	ready   sync.Map // *mqtt.Client -> struct{}: session established
}

// takeoverWait bounds how long a publisher waits for the new session; after
// it the message stays in the session's inflight map, resent on the next
// connect.
const takeoverWait = 10 * time.Second

func (h *takeoverHook) ID() string { return "warden-takeover" }
func (h *takeoverHook) Provides(b byte) bool {
	return b == mqtt.OnQosPublish || b == mqtt.OnSessionEstablished || b == mqtt.OnDisconnect
}

func (h *takeoverHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.ready.Store(cl, struct{}{})
}

func (h *takeoverHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.ready.Delete(cl) }

func (h *takeoverHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if cl.Net.Inline || pk.FixedHeader.Type != packets.Publish {
		return
	}
	if !cl.IsTakenOver() {
		return
	}
	deadline := time.Now().Add(takeoverWait)
	for {
		nc, ok := h.server.Clients.Get(cl.ID)
		if !ok || nc == cl {
			// the new client is not in the map yet
			if time.Now().After(deadline) {
				h.log.Warn("mqtt takeover: new session not found; message stays queued for the old one", "client", cl.ID, "topic", pk.TopicName)
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if nc.Properties.Clean {
			return // a clean start discards the old session
		}
		if got, ok := nc.State.Inflight.Get(pk.PacketID); ok && got.Created == pk.Created && got.TopicName == pk.TopicName {
			// stored before the clone: the new session has it
			if h.persist != nil {
				h.persist(nc, got)
			}
			if !nc.IsTakenOver() {
				return
			}
			cl, pk = nc, got
			continue
		}
		for !h.established(nc) && !nc.Closed() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		id, err := nc.NextPacketID()
		if err != nil {
			h.log.Warn("mqtt takeover: no packet id for a rescued message; dropped", "client", nc.ID, "topic", pk.TopicName)
			return
		}
		out := pk
		out.PacketID = uint16(id)
		out.FixedHeader.Dup = false
		if nc.State.Inflight.Set(out) {
			atomic.AddInt64(&h.server.Info.Inflight, 1)
		}
		if h.persist != nil {
			h.persist(nc, out)
		}
		h.rescued.Add(1)
		if nc.IsTakenOver() {
			cl, pk = nc, out // taken over again meanwhile: check that clone
			continue
		}
		if h.established(nc) && !nc.Closed() {
			// a failed write leaves it inflight, resent on reconnect
			_ = nc.WritePacket(out)
		}
		return
	}
}

func (h *takeoverHook) established(cl *mqtt.Client) bool {
	_, ok := h.ready.Load(cl)
	return ok
}
