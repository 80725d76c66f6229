package bus

import (
	"bytes"
	"crypto/subtle"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
)

// accessHook authenticates clients (bcrypt), keeps sessions with the user
// that made them, and applies the ACL and the command-topic guard.
type accessHook struct {
	mqtt.HookBase
	server    *mqtt.Server
	anonymous bool
	users     map[string][]byte // username -> bcrypt hash
	acl       []config.ACLRule
	internal  Credentials
	trustAnon bool
	// reserved client ids are the gateway's own: only Internal may use them.
	reserved map[string]bool
	commands *drivers.CommandSpace
	cmdUsers map[string]bool // may publish commands (mqtt.embedded.command_users)
	authFail prometheus.Counter
	idRefuse *prometheus.CounterVec
	denied   *prometheus.CounterVec
}

func (h *accessHook) ID() string { return "warden-access" }

func (h *accessHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, []byte{b})
}

func (h *accessHook) isInternal(cl *mqtt.Client) bool {
	if h.trustAnon && len(cl.Properties.Username) == 0 {
		return true
	}
	return h.internal.Username != "" && string(cl.Properties.Username) == h.internal.Username
}

func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if !h.authenticate(user, pass) {
		h.authFail.Inc()
		// never log the password
		h.Log.Warn("mqtt auth refused", "username", user, "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if why := h.sessionOwner(cl, user); why != "" {
		h.idRefuse.WithLabelValues(why).Inc()
		h.Log.Warn("mqtt client id refused", "username", user, "client", cl.ID, "remote", cl.Net.Remote, "reason", why)
		return false
	}
	return true
}

// sessionOwner says why user may not connect as cl.ID, or "". A client id
// is a session: only the user that made it may take it over (mochi lets
// any account do so, which let a device kick the gateway's own clients).
func (h *accessHook) sessionOwner(cl *mqtt.Client, user string) string {
	internal := h.isInternal(cl)
	if h.reserved[cl.ID] && !internal {
		return "reserved"
	}
	if h.server == nil {
		return ""
	}
	if old, ok := h.server.Clients.Get(cl.ID); ok && !old.Net.Inline && string(old.Properties.Username) != user {
		return "owned"
	}
	return ""
}

func (h *accessHook) authenticate(user string, pass []byte) bool {
	if h.internal.Username != "" && user == h.internal.Username {
		return subtle.ConstantTimeCompare(pass, []byte(h.internal.Password)) == 1
	}
	if user == "" {
		return h.anonymous
	}
	hash, ok := h.users[user]
	if !ok {
		return h.anonymous && len(pass) == 0
	}
	return bcrypt.CompareHashAndPassword(hash, pass) == nil
}

// OnPublish refuses a retained publish to a command topic from anyone,
// the gateway included: the broker would hand it to the actuator again on
// every reconnect. Warden's own retained status topics are not commands.
func (h *accessHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || cl.Net.Inline || len(pk.Payload) == 0 || !h.commands.Contains(pk.TopicName) || drivers.IsWardenTopic(pk.TopicName) {
		return pk, nil
	}
	h.denied.WithLabelValues("retain").Inc()
	h.Log.Warn("mqtt retained command refused", "username", string(cl.Properties.Username), "client", cl.ID, "topic", pk.TopicName)
	if pk.FixedHeader.Qos == 0 {
		return pk, packets.ErrRejectPacket
	}
	if cl.Properties.ProtocolVersion == 5 {
		return pk, packets.ErrNotAuthorized // mochi answers with this PUBACK code
	}
	// MQTT 3.1.1 has no refusal code: disconnect, as mochi does for a
	// publish its ACL denies.
	_ = h.server.DisconnectClient(cl, packets.ErrNotAuthorized)
	return pk, packets.ErrRejectPacket
}

func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline || h.isInternal(cl) {
		return true
	}
	user := string(cl.Properties.Username)
	ok := h.allowed(user, topic, write)
	if !ok {
		action := "read"
		if write {
			action = "write"
		}
		h.denied.WithLabelValues(action).Inc()
		if write {
			h.Log.Warn("mqtt publish denied", "username", string(cl.Properties.Username), "client", cl.ID, "topic", topic)
		}
	}
	return ok
}

func (h *accessHook) allowed(user, topic string, write bool) bool {
	if write && h.commands.Contains(topic) && (drivers.IsWardenTopic(topic) || !h.cmdUsers[user]) {
		return false
	}
	if len(h.acl) == 0 {
		return true
	}
	for _, r := range h.acl {
		if r.Username != "*" && r.Username != user {
			continue
		}
		filters := r.Read
		if write {
			filters = r.Write
		}
		for _, f := range filters {
			if topicMatch(f, topic) {
				return true
			}
		}
	}
	return false
}

// topicMatch reports whether topic (or a filter, for subscribe checks)
// matches filter with MQTT wildcards.
func topicMatch(filter, topic string) bool {
	fs := strings.Split(filter, "/")
	ts := strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return i > 0 || !strings.HasPrefix(topic, "$")
		}
		if i >= len(ts) {
			return false
		}
		if f == "+" {
			if i == 0 && strings.HasPrefix(ts[0], "$") {
				return false
			}
			continue
		}
		if f != ts[i] {
			return false
		}
	}
	return len(fs) == len(ts)
}

func bcryptCost(hash string) (int, error) { return bcrypt.Cost([]byte(hash)) }
