package bus

import (
	"bytes"
	"crypto/subtle"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/smartcommunity/warden/edge/config"
)

// accessHook authenticates clients (bcrypt) and applies the ACL.
type accessHook struct {
	mqtt.HookBase
	anonymous bool
	users     map[string][]byte // username -> bcrypt hash
	acl       []config.ACLRule
	internal  Credentials
	trustAnon bool
	authFail  prometheus.Counter
	denied    *prometheus.CounterVec
}

func (h *accessHook) ID() string { return "warden-access" }

func (h *accessHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *accessHook) isInternal(cl *mqtt.Client) bool {
	if h.trustAnon && len(cl.Properties.Username) == 0 {
		return true
	}
	return h.internal.Username != "" && string(cl.Properties.Username) == h.internal.Username
}

func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	ok := h.authenticate(user, pass)
	if !ok {
		h.authFail.Inc()
		// never log the password
		h.Log.Warn("mqtt auth refused", "username", user, "client", cl.ID, "remote", cl.Net.Remote)
	}
	return ok
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

// isCommandTopic reports topics only the gateway may write: its own tree and
// actuator commands.
func isCommandTopic(topic string) bool {
	return topic == "warden" || strings.HasPrefix(topic, "warden/") ||
		strings.HasSuffix(topic, "/set") || strings.HasSuffix(topic, "/command") ||
		strings.HasSuffix(topic, "/cmd")
}

func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline || h.isInternal(cl) {
		return true
	}
	ok := h.allowed(string(cl.Properties.Username), topic, write)
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
	if write && isCommandTopic(topic) {
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
