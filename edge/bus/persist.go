package bus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/health"
)

// storeHook persists mochi's sessions, subscriptions, inflight and retained
// messages in bbolt. It replaces mochi's hooks/storage/bolt because that hook
// loses accepted messages on kill -9 (see README.md, "Persistence"):
//
//   - mochi sends PUBACK to the publisher BEFORE it routes the message to the
//     subscribers and calls OnQosPublish for their inflight copies. So this
//     hook writes the accepted publish as a "pending" record in OnPublish and
//     waits for its fsync before mochi may PUBACK; the record is deleted after
//     routing (OnPublished) and re-published on start if it survived a crash.
//   - every other write goes through one group-commit queue: writes are
//     applied in order, many per fsynced transaction. Because the pending
//     delete is queued after the subscribers' inflight writes, a committed
//     delete implies committed inflight copies.
type storeHook struct {
	mqtt.HookBase
	db     *bbolt.DB
	log    *slog.Logger
	server *mqtt.Server
	errs   func() // counts a failed commit
	seed   func(maxCreated int64)
	// internal is the gateway's own username: its publishes are delivered
	// from memory when they cannot be persisted (a valve command must not
	// wait for a disk). commands: retained commands are not reloaded.
	internal string
	commands *drivers.CommandSpace
	health   health.Commits

	mu      sync.Mutex
	queue   []kvOp
	waiters []chan error
	closed  bool
	kick    chan struct{}
	done    chan struct{}
	crash   bool // test only: drop the queue instead of flushing on stop

	seqMu   sync.Mutex
	seq     uint64
	pending map[string][]byte // client id + packet id -> pending key
}

type kvOp struct {
	key, val []byte // val nil = delete
}

const (
	bucketName = "warden-broker"
	pendingKey = "PUB_"
)

func openStore(path string, log *slog.Logger, errs func()) (*storeHook, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("broker store %s: open: %w", path, err)
	}
	var seq uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketName))
		if err != nil {
			return err
		}
		c := b.Cursor()
		// pending keys sort by sequence; continue after the last one.
		for k, _ := c.Seek([]byte(pendingKey)); k != nil && bytes.HasPrefix(k, []byte(pendingKey)); k, _ = c.Next() {
			if len(k) == len(pendingKey)+8 {
				seq = binary.BigEndian.Uint64(k[len(pendingKey):])
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("broker store %s: init: %w", path, err)
	}
	h := &storeHook{
		db: db, log: log, errs: errs, seq: seq,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		pending: map[string][]byte{},
	}
	go h.writer()
	return h, nil
}

func (h *storeHook) ID() string { return "warden-bbolt" }

func (h *storeHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnSessionEstablished,
		mqtt.OnDisconnect,
		mqtt.OnSubscribed,
		mqtt.OnUnsubscribed,
		mqtt.OnRetainMessage,
		mqtt.OnWillSent,
		mqtt.OnPublish,
		mqtt.OnPublished,
		mqtt.OnQosPublish,
		mqtt.OnQosComplete,
		mqtt.OnQosDropped,
		mqtt.OnClientExpired,
		mqtt.OnRetainedExpired,
		mqtt.StoredClients,
		mqtt.StoredInflightMessages,
		mqtt.StoredRetainedMessages,
		mqtt.StoredSubscriptions,
	}, []byte{b})
}

// writer applies queued operations, many per transaction (group commit).
func (h *storeHook) writer() {
	defer close(h.done)
	for range h.kick {
		for {
			h.mu.Lock()
			ops, waiters := h.queue, h.waiters
			h.queue, h.waiters = nil, nil
			closed, crash := h.closed, h.crash
			h.mu.Unlock()
			if crash {
				for _, w := range waiters {
					w <- errors.New("broker store: stopped")
				}
				return
			}
			if len(ops) == 0 && len(waiters) == 0 {
				if closed {
					return
				}
				break
			}
			err := h.db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket([]byte(bucketName))
				for _, op := range ops {
					var err error
					if op.val == nil {
						err = b.Delete(op.key)
					} else {
						err = b.Put(op.key, op.val)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				h.errs()
				h.health.Failed(err)
				h.log.Error("broker store: commit failed", "ops", len(ops), "error", err)
			} else if h.health.Succeeded() {
				h.log.Info("broker store: commits succeed again")
			}
			for _, w := range waiters {
				w <- err
			}
		}
	}
}

// enqueue adds operations; with wait it returns after they are fsynced.
func (h *storeHook) enqueue(wait bool, ops ...kvOp) error {
	var w chan error
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("broker store: stopped")
	}
	h.queue = append(h.queue, ops...)
	if wait {
		w = make(chan error, 1)
		h.waiters = append(h.waiters, w)
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
	if w == nil {
		return nil
	}
	return <-w
}

func (h *storeHook) put(wait bool, key string, v storage.Serializable) {
	data, err := v.MarshalBinary()
	if err != nil {
		h.log.Error("broker store: encode", "key", key, "error", err)
		return
	}
	_ = h.enqueue(wait, kvOp{key: []byte(key), val: data})
}

func (h *storeHook) del(key string) { _ = h.enqueue(false, kvOp{key: []byte(key)}) }

// Healthy is nil unless the last commit failed (a full disk, say).
func (h *storeHook) Healthy() error {
	return h.health.Err("broker store")
}

// Stop flushes the queue and closes the file.
func (h *storeHook) Stop() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
	<-h.done
	return h.db.Close()
}

// stopLikeKill drops every write not yet committed and closes the file, as
// a kill -9 would (tests).
func (h *storeHook) stopLikeKill() {
	h.mu.Lock()
	h.crash = true
	h.mu.Unlock()
	_ = h.Stop()
}

func clientKey(id string) string { return storage.ClientKey + "_" + id }
func subKey(id, filter string) string {
	return storage.SubscriptionKey + "_" + id + ":" + filter
}
func retainedKey(topic string) string { return storage.RetainedKey + "_" + topic }
func inflightKey(id string, pk packets.Packet) string {
	return storage.InflightKey + "_" + id + ":" + pk.FormatID()
}

func (h *storeHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { h.putClient(cl) }
func (h *storeHook) OnWillSent(cl *mqtt.Client, _ packets.Packet)           { h.putClient(cl) }

func (h *storeHook) putClient(cl *mqtt.Client) {
	props := cl.Properties.Props.Copy(false)
	h.put(true, clientKey(cl.ID), &storage.Client{
		ID: cl.ID, T: storage.ClientKey, Remote: cl.Net.Remote, Listener: cl.Net.Listener,
		Username: cl.Properties.Username, Clean: cl.Properties.Clean,
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval:     props.SessionExpiryInterval,
			SessionExpiryIntervalFlag: props.SessionExpiryIntervalFlag,
			AuthenticationMethod:      props.AuthenticationMethod,
			AuthenticationData:        props.AuthenticationData,
			RequestProblemInfo:        props.RequestProblemInfo,
			RequestProblemInfoFlag:    props.RequestProblemInfoFlag,
			RequestResponseInfo:       props.RequestResponseInfo,
			ReceiveMaximum:            props.ReceiveMaximum,
			TopicAliasMaximum:         props.TopicAliasMaximum,
			User:                      props.User,
			MaximumPacketSize:         props.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	})
}

func (h *storeHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.seqMu.Lock()
	prefix := cl.ID + "\x00"
	for k := range h.pending {
		if strings.HasPrefix(k, prefix) {
			// Never routed (mochi failed before OnPublished); the record
			// stays and is re-published on the next start.
			delete(h.pending, k)
		}
	}
	h.seqMu.Unlock()
	if !expire || cl.StopCause() == packets.ErrSessionTakenOver {
		return
	}
	h.del(clientKey(cl.ID))
}

func (h *storeHook) OnClientExpired(cl *mqtt.Client) { h.del(clientKey(cl.ID)) }

func (h *storeHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] >= 0x80 {
			continue
		}
		h.put(true, subKey(cl.ID, f.Filter), &storage.Subscription{
			ID: subKey(cl.ID, f.Filter), T: storage.SubscriptionKey, Client: cl.ID,
			Qos: codes[i], Filter: f.Filter, Identifier: f.Identifier, NoLocal: f.NoLocal,
			RetainHandling: f.RetainHandling, RetainAsPublished: f.RetainAsPublished,
		})
	}
}

func (h *storeHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		h.del(subKey(cl.ID, f.Filter))
	}
}

func toMessage(key, t, client string, pk packets.Packet, sent int64) *storage.Message {
	props := pk.Properties.Copy(false)
	return &storage.Message{
		ID: key, T: t, Client: client, Origin: pk.Origin, FixedHeader: pk.FixedHeader,
		TopicName: pk.TopicName, Payload: pk.Payload, Sent: sent, Created: pk.Created,
		PacketID: pk.PacketID,
		Properties: storage.MessageProperties{
			PayloadFormat: props.PayloadFormat, PayloadFormatFlag: props.PayloadFormatFlag,
			MessageExpiryInterval: props.MessageExpiryInterval, ContentType: props.ContentType,
			ResponseTopic: props.ResponseTopic, CorrelationData: props.CorrelationData,
			SubscriptionIdentifier: props.SubscriptionIdentifier, TopicAlias: props.TopicAlias,
			User: props.User,
		},
	}
}

// OnRetainMessage waits for the fsync: it runs before mochi's PUBACK.
func (h *storeHook) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if r == -1 {
		_ = h.enqueue(true, kvOp{key: []byte(retainedKey(pk.TopicName))})
		return
	}
	h.put(true, retainedKey(pk.TopicName), toMessage(retainedKey(pk.TopicName), storage.RetainedKey, cl.ID, pk, 0))
}

func (h *storeHook) OnRetainedExpired(topic string) { h.del(retainedKey(topic)) }

func (h *storeHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if cl.Net.Inline || pk.FixedHeader.Type == packets.Puback {
		// mochi passes the PUBACK of every QoS 1 publish it receives
		// through its inflight map and out again at once: storing and
		// deleting it cost two writes and an fsync per device message.
		return
	}
	if cl.IsTakenOver() && pk.FixedHeader.Type == packets.Publish {
		return // takeoverHook stores it under the session that gets it
	}
	h.putInflight(cl, pk)
}

func (h *storeHook) putInflight(cl *mqtt.Client, pk packets.Packet) {
	key := inflightKey(cl.ID, pk)
	h.put(false, key, toMessage(key, storage.InflightKey, cl.ID, pk, pk.Created))
}

func (h *storeHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type == packets.Puback && pk.Created != 0 {
		// Our own PUBACK of a received publish (buildAck stamps Created; a
		// subscriber's PUBACK off the wire has none): never stored.
		return
	}
	h.del(inflightKey(cl.ID, pk))
}

func (h *storeHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	// On a session takeover mochi clears the old client's inflight (calling
	// this) after copying it to the new one: the records stay valid.
	if cl.IsTakenOver() {
		return
	}
	h.del(inflightKey(cl.ID, pk))
}

func pendingMapKey(cl *mqtt.Client, id uint16) string {
	return fmt.Sprintf("%s\x00%d", cl.ID, id)
}

// OnPublish makes an accepted QoS>0 publish durable before mochi PUBACKs it.
func (h *storeHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || pk.FixedHeader.Qos == 0 || !h.hasSubscribers(pk.TopicName) {
		return pk, nil
	}
	h.seqMu.Lock()
	h.seq++
	key := make([]byte, len(pendingKey)+8)
	copy(key, pendingKey)
	binary.BigEndian.PutUint64(key[len(pendingKey):], h.seq)
	mk := pendingMapKey(cl, pk.PacketID)
	old := h.pending[mk]
	h.pending[mk] = key
	h.seqMu.Unlock()
	data, err := toMessage(string(key), pendingKey, cl.ID, pk, 0).MarshalBinary()
	if err != nil {
		return pk, nil
	}
	ops := []kvOp{{key: key, val: data}}
	if old != nil {
		// a resend of a publish mochi never routed replaces it
		ops = append(ops, kvOp{key: old})
	}
	if err := h.enqueue(true, ops...); err != nil {
		h.seqMu.Lock()
		delete(h.pending, mk)
		h.seqMu.Unlock()
		if h.internal != "" && string(cl.Properties.Username) == h.internal {
			// The gateway's own publish (an alarm, an event mirror): better
			// delivered from memory than not at all; its client would wait
			// for a PUBACK for ever.
			h.log.Warn("broker store failing: gateway publish delivered from memory only", "topic", pk.TopicName, "error", err)
			return pk, nil
		}
		// Refuse rather than PUBACK a message that is not durable: v3
		// publishers are disconnected and resend it.
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

func (h *storeHook) hasSubscribers(topic string) bool {
	if h.server == nil {
		return true
	}
	subs := h.server.Topics.Subscribers(topic)
	return len(subs.Subscriptions) > 0 || len(subs.Shared) > 0
}

func (h *storeHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline || pk.FixedHeader.Qos == 0 {
		return
	}
	mk := pendingMapKey(cl, pk.PacketID)
	h.seqMu.Lock()
	key, ok := h.pending[mk]
	delete(h.pending, mk)
	h.seqMu.Unlock()
	if ok {
		_ = h.enqueue(false, kvOp{key: key})
	}
}

// replayPending re-publishes accepted publishes that a crash interrupted
// before they reached the subscribers' inflight records. It may duplicate
// (QoS 1 is at least once); it never loses.
func (h *storeHook) replayPending(s *mqtt.Server) (int, error) {
	var msgs []storage.Message
	var keys [][]byte
	err := h.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(bucketName)).Cursor()
		for k, v := c.Seek([]byte(pendingKey)); k != nil && bytes.HasPrefix(k, []byte(pendingKey)); k, v = c.Next() {
			var m storage.Message
			if err := m.UnmarshalBinary(v); err != nil {
				h.log.Error("broker store: bad pending record dropped", "key", string(k), "error", err)
			} else {
				msgs = append(msgs, m)
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("broker store: read pending: %w", err)
	}
	for _, m := range msgs {
		if err := s.Publish(m.TopicName, m.Payload, false, m.FixedHeader.Qos); err != nil {
			return 0, fmt.Errorf("broker store: replay %s: %w", m.TopicName, err)
		}
	}
	ops := make([]kvOp, len(keys))
	for i, k := range keys {
		ops[i] = kvOp{key: k}
	}
	if len(ops) > 0 {
		if err := h.enqueue(true, ops...); err != nil {
			return 0, err
		}
	}
	return len(msgs), nil
}

func (h *storeHook) StoredClients() ([]storage.Client, error) {
	var v []storage.Client
	err := h.iter(storage.ClientKey+"_", func(b []byte) error {
		var o storage.Client
		if err := o.UnmarshalBinary(b); err != nil {
			return err
		}
		v = append(v, o)
		return nil
	})
	return v, err
}

func (h *storeHook) StoredSubscriptions() ([]storage.Subscription, error) {
	var v []storage.Subscription
	err := h.iter(storage.SubscriptionKey+"_", func(b []byte) error {
		var o storage.Subscription
		if err := o.UnmarshalBinary(b); err != nil {
			return err
		}
		v = append(v, o)
		return nil
	})
	return v, err
}

// StoredRetainedMessages leaves out retained commands (stored by an older
// version, or by hand in the file) and deletes them: an actuator must not
// get a command again because the gateway restarted.
func (h *storeHook) StoredRetainedMessages() ([]storage.Message, error) {
	all, err := h.messages(storage.RetainedKey + "_")
	out := all[:0]
	for _, m := range all {
		if h.commands.Contains(m.TopicName) && !drivers.IsWardenTopic(m.TopicName) {
			h.log.Warn("broker store: retained command deleted", "topic", m.TopicName)
			h.del(retainedKey(m.TopicName))
			continue
		}
		out = append(out, m)
	}
	return out, err
}

func (h *storeHook) StoredInflightMessages() ([]storage.Message, error) {
	v, err := h.messages(storage.InflightKey + "_")
	if h.seed != nil && len(v) > 0 {
		// continue the order counter after the newest loaded message, so
		// new messages sort after the reloaded ones (mod 2^16)
		last := v[0].Created
		for _, m := range v[1:] {
			if int16(uint16(m.Created)-uint16(last)) > 0 {
				last = m.Created
			}
		}
		h.seed(last)
	}
	return v, err
}

func (h *storeHook) messages(prefix string) ([]storage.Message, error) {
	var v []storage.Message
	err := h.iter(prefix, func(b []byte) error {
		var o storage.Message
		if err := o.UnmarshalBinary(b); err != nil {
			return err
		}
		v = append(v, o)
		return nil
	})
	return v, err
}

// iter visits values under prefix; an undecodable record is logged and skipped.
func (h *storeHook) iter(prefix string, visit func([]byte) error) error {
	return h.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(bucketName)).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if err := visit(v); err != nil {
				h.log.Error("broker store: bad record skipped", "key", string(k), "error", err)
			}
		}
		return nil
	})
}
