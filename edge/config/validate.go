package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

var gat1400ID = regexp.MustCompile(`^[0-9]{20}$`)

// Defaults in one place; configs/warden.yaml repeats them for people.
const (
	DefaultDataDir        = "/var/lib/warden"
	DefaultMQTTListen     = "127.0.0.1:1883"
	DefaultAPIListen      = "127.0.0.1:8080"
	DefaultMaxPayload     = 64 << 10
	DefaultMaxInflight    = 65535
	DefaultMaxPacket      = 256 << 10
	DefaultMaxClients     = 1000
	DefaultConnectTimeout = 10 * time.Second
	// MaxDays bounds day counts (100 years): more overflows a Duration.
	MaxDays               = 36500
	DefaultMaxBody        = 1 << 20
	DefaultEventsDays     = 90
	DefaultMediaMaxBytes  = 2 << 30
	DefaultEventsMaxBytes = 1 << 30
	DefaultUnknownFace    = 7
	DefaultBatch          = 200
	DefaultOpenTimeout    = 5 * time.Second
	DefaultOfflineGrace   = 30 * time.Second
	DefaultStallTimeout   = 10 * time.Second
	DefaultSessionTTL     = 12 * time.Hour
	DefaultEscalate       = 2 * time.Minute
	DefaultPreSeconds     = 5
	DefaultPostSeconds    = 5
	DefaultDetectFPS      = 5
)

// DeviceKinds are the kinds of INTERFACES.md.
var DeviceKinds = []string{"gas_detector", "gas_valve", "wristband", "perimeter", "barrier_gate", "siren"}

// Roles an API token or user may have.
var Roles = []string{"guard", "platform", "admin"}

func (c *Config) applyDefaults() {
	if c.Gateway.DataDir == "" {
		c.Gateway.DataDir = DefaultDataDir
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.MQTT.Embedded.Listen == "" {
		c.MQTT.Embedded.Listen = DefaultMQTTListen
	}
	if c.MQTT.Embedded.MaxInflight == 0 {
		c.MQTT.Embedded.MaxInflight = DefaultMaxInflight
	}
	if c.MQTT.Embedded.MaxPacketBytes == 0 {
		c.MQTT.Embedded.MaxPacketBytes = DefaultMaxPacket
	}
	if c.MQTT.Embedded.MaxClients == 0 {
		c.MQTT.Embedded.MaxClients = DefaultMaxClients
	}
	if c.MQTT.Embedded.ConnectTimeout == 0 {
		c.MQTT.Embedded.ConnectTimeout = Duration(DefaultConnectTimeout)
	}
	if c.MQTT.Embedded.Persist == nil {
		t := true
		c.MQTT.Embedded.Persist = &t
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "warden-" + c.Gateway.ID
	}
	if c.MQTT.HomeAssistant.Prefix == "" {
		c.MQTT.HomeAssistant.Prefix = "homeassistant"
	}
	if c.MQTT.MaxPayloadBytes == 0 {
		c.MQTT.MaxPayloadBytes = DefaultMaxPayload
	}
	if c.API.Listen == "" {
		c.API.Listen = DefaultAPIListen
	}
	if c.API.MaxBodyBytes == 0 {
		c.API.MaxBodyBytes = DefaultMaxBody
	}
	if c.API.SessionTTL == 0 {
		c.API.SessionTTL = Duration(DefaultSessionTTL)
	}
	if c.Alarms.EscalateAfter == 0 {
		c.Alarms.EscalateAfter = Duration(DefaultEscalate)
	}
	if c.Uplink.Batch == 0 {
		c.Uplink.Batch = DefaultBatch
	}
	if c.Uplink.Linger == 0 {
		c.Uplink.Linger = Duration(200 * time.Millisecond)
	}
	if c.Uplink.MinBackoff == 0 {
		c.Uplink.MinBackoff = Duration(time.Second)
	}
	if c.Uplink.MaxBackoff == 0 {
		c.Uplink.MaxBackoff = Duration(time.Minute)
	}
	if c.Retention.EventsDays == 0 {
		c.Retention.EventsDays = DefaultEventsDays
	}
	if c.Live.MaxViewers == 0 {
		c.Live.MaxViewers = 4
	}
	if c.Retention.MediaMaxBytes == 0 {
		c.Retention.MediaMaxBytes = DefaultMediaMaxBytes
	}
	if c.Retention.EventsMaxBytes == 0 {
		c.Retention.EventsMaxBytes = DefaultEventsMaxBytes
	}
	if c.Retention.UnknownFaceDays == 0 {
		c.Retention.UnknownFaceDays = DefaultUnknownFace
	}
	if c.Store.OpenTimeout == 0 {
		c.Store.OpenTimeout = Duration(DefaultOpenTimeout)
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Record.PreSeconds == 0 {
			cam.Record.PreSeconds = DefaultPreSeconds
		}
		if cam.Record.PostSeconds == 0 {
			cam.Record.PostSeconds = DefaultPostSeconds
		}
		if cam.Detect.FPS == 0 {
			cam.Detect.FPS = DefaultDetectFPS
		}
		if cam.OfflineGrace == 0 {
			cam.OfflineGrace = Duration(DefaultOfflineGrace)
		}
		if cam.StallTimeout == 0 {
			cam.StallTimeout = Duration(DefaultStallTimeout)
		}
	}
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (c *Config) validate() []Problem {
	var ps []Problem
	add := func(key, f string, a ...any) { ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(f, a...)}) }

	if c.Gateway.ID == "" {
		add("gateway.id", "is required")
	} else if !idRe.MatchString(c.Gateway.ID) {
		add("gateway.id", "%q must be letters, digits, '-', '_' or '.' (it is part of MQTT topics)", c.Gateway.ID)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if c.MQTT.Broker != "" {
		if u, err := url.Parse(c.MQTT.Broker); err != nil || !slices.Contains([]string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}, u.Scheme) || u.Host == "" {
			add("mqtt.broker", "%q is not a broker URL like tcp://host:1883", c.MQTT.Broker)
		}
	} else {
		if msg := checkListen(c.MQTT.Embedded.Listen); msg != "" {
			add("mqtt.embedded.listen", "%s", msg)
		}
		e := c.MQTT.Embedded
		if e.MaxInflight < 1 || e.MaxInflight > 65535 {
			add("mqtt.embedded.max_inflight", "%d is outside 1..65535", e.MaxInflight)
		}
		if e.MaxPacketBytes < 1024 || e.MaxPacketBytes > 256<<20 {
			add("mqtt.embedded.max_packet_bytes", "%d is outside 1024..268435456", e.MaxPacketBytes)
		} else if c.MQTT.MaxPayloadBytes >= e.MaxPacketBytes {
			add("mqtt.embedded.max_packet_bytes", "%d must be above mqtt.max_payload_bytes (%d), or oversized payloads disconnect devices instead of being dead-lettered", e.MaxPacketBytes, c.MQTT.MaxPayloadBytes)
		}
		if e.MaxClients < 1 {
			add("mqtt.embedded.max_clients", "%d must be at least 1", e.MaxClients)
		}
		if d := e.ConnectTimeout.D(); d < time.Second || d > 5*time.Minute {
			add("mqtt.embedded.connect_timeout", "%v is outside 1s..5m", d)
		}
		users := map[string]bool{}
		for _, u := range e.Users {
			users[u.Username] = true
		}
		for i, u := range e.CommandUsers {
			if !users[u] {
				add(fmt.Sprintf("mqtt.embedded.command_users[%d]", i), "%q is not one of mqtt.embedded.users", u)
			}
		}
	}
	for i, u := range c.MQTT.Embedded.Users {
		k := fmt.Sprintf("mqtt.embedded.users[%d]", i)
		if u.Username == "" {
			add(k+".username", "is required")
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			add(k+".password_hash", "must be a bcrypt hash ($2a$…); make one with `warden hash-password`")
		}
	}
	if c.MQTT.MaxPayloadBytes < 0 {
		add("mqtt.max_payload_bytes", "must be positive")
	}
	if msg := checkListen(c.API.Listen); msg != "" {
		add("api.listen", "%s", msg)
	}
	if c.API.MaxBodyBytes < 0 {
		add("api.max_body_bytes", "must be positive")
	}
	if c.API.SessionTTL < 0 {
		add("api.session_ttl", "must be positive")
	}
	names := map[string]bool{}
	values := map[string]string{} // sha256 hex → key of the token that has it
	for i, t := range c.API.Tokens {
		k := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			add(k+".name", "is required")
		} else if names[t.Name] {
			add(k+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if len(strings.TrimPrefix(t.Token, "sha256:")) < 16 {
			add(k+".token", "is too short (at least 16 characters, or sha256:<hex>)")
		}
		if h, ok := strings.CutPrefix(t.Token, "sha256:"); ok && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) {
			add(k+".token", "sha256: must be followed by 64 lowercase hex digits")
		}
		if !slices.Contains(Roles, t.Role) {
			add(k+".role", "%q is not guard, platform or admin", t.Role)
		}
		if h := tokenHash(t.Token); h != "" {
			if prev, dup := values[h]; dup {
				add(k+".token", "the same token value as %s: one secret must not carry two names or roles", prev)
			} else {
				values[h] = k + ".token"
			}
		}
	}
	for i, u := range c.API.Users {
		k := fmt.Sprintf("api.users[%d]", i)
		if u.Username == "" {
			add(k+".username", "is required")
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			add(k+".password_hash", "must be a bcrypt hash ($2a$…)")
		}
		if !slices.Contains(Roles, u.Role) {
			add(k+".role", "%q is not guard, platform or admin", u.Role)
		}
	}

	ids := map[string]string{}
	topics := map[string]string{}
	for i, d := range c.Devices {
		k := fmt.Sprintf("devices[%d]", i)
		if d.ID == "" {
			add(k+".id", "is required")
		} else if !idRe.MatchString(d.ID) {
			add(k+".id", "%q must be letters, digits, '-', '_' or '.'", d.ID)
		} else if prev, ok := ids[d.ID]; ok {
			add(k+".id", "duplicate id %q (also %s)", d.ID, prev)
		} else {
			ids[d.ID] = k
		}
		if !slices.Contains(DeviceKinds, d.Kind) {
			add(k+".kind", "%q is not one of %s", d.Kind, strings.Join(DeviceKinds, ", "))
		}
		if d.Driver == "" {
			add(k+".driver", "is required")
		}
		if d.Topic == "" {
			add(k+".topic", "is required")
		} else if strings.ContainsAny(d.Topic, "+#") {
			add(k+".topic", "%q must be a plain topic, not a filter", d.Topic)
		} else if d.Topic == "warden" || strings.HasPrefix(d.Topic, "warden/") {
			add(k+".topic", "%q is inside warden/, which only the gateway may write", d.Topic)
		} else if prev, ok := topics[d.Topic]; ok {
			add(k+".topic", "%q is also used by %s", d.Topic, prev)
		} else {
			topics[d.Topic] = k
		}
	}
	for i, cam := range c.Cameras {
		k := fmt.Sprintf("cameras[%d]", i)
		if cam.ID == "" {
			add(k+".id", "is required")
		} else if !idRe.MatchString(cam.ID) {
			add(k+".id", "%q must be letters, digits, '-', '_' or '.'", cam.ID)
		} else if prev, ok := ids[cam.ID]; ok {
			add(k+".id", "duplicate id %q (also %s)", cam.ID, prev)
		} else {
			ids[cam.ID] = k
		}
		if cam.URL == "" {
			add(k+".url", "is required (rtsp://… or a file path)")
		}
		if cam.Detect.FPS < 0 || cam.Detect.FPS > 60 {
			add(k+".detect.fps", "%v is outside 0..60", cam.Detect.FPS)
		}
		if cam.OfflineGrace.D() < time.Second {
			add(k+".offline_grace", "%v is below 1s", cam.OfflineGrace.D())
		}
		if cam.StallTimeout.D() < time.Second {
			add(k+".stall_timeout", "%v is below 1s", cam.StallTimeout.D())
		}
		for j, z := range cam.Detect.Regions {
			if len(z.Points) < 3 {
				add(fmt.Sprintf("%s.detect.zones[%d]", k, j), "%q has %d points: a region needs at least 3", z.Name, len(z.Points))
			}
		}
	}
	if h := c.Uplink.HTTP; h != nil {
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("uplink.http.url", "%q is not an http(s) URL", h.URL)
		}
		if h.MediaURL != "" {
			if u, err := url.Parse(h.MediaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("uplink.http.media_url", "%q is not an http(s) URL", h.MediaURL)
			}
		}
	}
	if c.Uplink.MinBackoff < 0 || c.Uplink.MaxBackoff < 0 || (c.Uplink.MaxBackoff > 0 && c.Uplink.MaxBackoff < c.Uplink.MinBackoff) {
		add("uplink.max_backoff", "must be positive and not below min_backoff")
	}
	if h := c.MQTT.HomeAssistant; h.Enabled && (h.Prefix == "" || strings.ContainsAny(h.Prefix, "#+") || strings.HasPrefix(h.Prefix, "/") || strings.HasSuffix(h.Prefix, "/") || strings.HasPrefix(h.Prefix, "warden/") || h.Prefix == "warden") {
		add("mqtt.homeassistant.prefix", "%q is not a topic prefix (no wildcards, no leading or trailing /, not under warden/)", h.Prefix)
	}
	if g := c.Uplink.GAT1400; g != nil {
		if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("uplink.gat1400.url", "%q is not an http(s) URL", g.URL)
		}
		if !gat1400ID.MatchString(g.DeviceID) {
			add("uplink.gat1400.device_id", "%q is not 20 digits (GA/T 1400 device code)", g.DeviceID)
		}
		if g.Keepalive != 0 && (g.Keepalive.D() < time.Second || g.Keepalive.D() > time.Hour) {
			add("uplink.gat1400.keepalive", "%v is outside 1s..1h", g.Keepalive.D())
		}
		if g.Timeout < 0 {
			add("uplink.gat1400.timeout", "must be positive")
		}
		if g.Username == "" && g.Password != "" {
			add("uplink.gat1400.username", "is required with a password")
		}
	}
	if m := c.Uplink.MQTT; m != nil && m.Broker == "" {
		add("uplink.mqtt.broker", "is required")
	}
	if c.Uplink.Batch < 0 || c.Uplink.Batch > 10000 {
		add("uplink.batch", "%d is outside 1..10000", c.Uplink.Batch)
	}
	if c.Uplink.MaxBacklogBytes < 0 {
		add("uplink.max_backlog_bytes", "must be positive")
	}
	if c.Uplink.Linger < 0 {
		add("uplink.linger", "must be positive")
	}
	if c.Alarms.EscalateAfter.D() < time.Second {
		add("alarms.escalate_after", "%v is below 1s: escalation cannot be turned off", c.Alarms.EscalateAfter.D())
	}
	for k, v := range c.Alarms.Priorities {
		if v < 1 || v > 3 {
			add("alarms.priorities."+k, "%d is not 1 (life safety), 2 (security) or 3 (routine)", v)
		}
		if k == "" || strings.HasPrefix(k, "*") {
			add("alarms.priorities", "%q is not an event type or group like gas.*", k)
		}
	}
	if c.Alarms.AcceptWithin != 0 && c.Alarms.AcceptWithin.D() < time.Second {
		add("alarms.accept_within", "%v is below 1s", c.Alarms.AcceptWithin.D())
	}
	seen := map[string]bool{}
	for _, d := range c.Alarms.Duty {
		if d == "" || seen[d] {
			add("alarms.duty", "%q is empty or listed twice", d)
		}
		seen[d] = true
	}
	for what, m := range map[string]map[string]string{"buildings": c.Places.Buildings, "zones": c.Places.Zones} {
		for k, v := range m {
			if k == "" || strings.TrimSpace(v) == "" {
				add("places."+what, "%q: %q: id and label must not be empty", k, v)
			}
		}
	}
	ps = append(ps, c.validateNotify()...)
	if c.Live.MaxViewers < 1 || c.Live.MaxViewers > 64 {
		add("live.max_viewers", "%d is outside 1..64", c.Live.MaxViewers)
	}
	if c.Retention.EventsDays < 0 || c.Retention.EventsDays > MaxDays {
		add("retention.events_days", "%d is outside 1..%d", c.Retention.EventsDays, MaxDays)
	}
	if c.Retention.UnknownFaceDays < 0 || c.Retention.UnknownFaceDays > MaxDays {
		add("retention.unknown_face_days", "%d is outside 1..%d", c.Retention.UnknownFaceDays, MaxDays)
	}
	if c.Retention.MediaMaxBytes < 0 {
		add("retention.media_max_bytes", "must be positive")
	}
	if c.Retention.EventsMaxBytes < 0 {
		add("retention.events_max_bytes", "must be positive")
	}
	if c.Store.OpenTimeout < 0 {
		add("store.open_timeout", "must be positive")
	}
	return ps
}

// checkListen checks a host:port listen address; "" when it is fine.
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: port %q is not a number in 0..65535", addr, port)
	}
	return ""
}

// tokenHash is the sha256 hex of a token, whether written plain or hashed;
// "" for a malformed hash (reported on its own).
func tokenHash(tok string) string {
	if h, ok := strings.CutPrefix(tok, "sha256:"); ok {
		if len(h) != 64 {
			return ""
		}
		return h
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// NotifyKinds are the notify target kinds edge/notify speaks.
var NotifyKinds = []string{"wecom", "dingtalk", "webhook", "sms_http"}

// NotifyBodyFuncs are the functions an sms_http body template may call:
// json quotes a value as JSON (a string with its quotes).
var NotifyBodyFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// NotifyActions are the alarm changes a notify route may select.
var NotifyActions = []string{"opened", "escalated", "acknowledged", "resolved"}

func (c *Config) validateNotify() []Problem {
	var ps []Problem
	add := func(key, f string, a ...any) { ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(f, a...)}) }
	n := &c.Notify
	if n.ConsoleURL != "" {
		if u, err := url.Parse(n.ConsoleURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("notify.console_url", "%q is not an http(s) URL", n.ConsoleURL)
		}
	}
	if n.Language != "" && n.Language != "zh-CN" && n.Language != "en" {
		add("notify.language", "%q is not zh-CN or en", n.Language)
	}
	names := map[string]bool{}
	for i := range n.Targets {
		t := &n.Targets[i]
		key := fmt.Sprintf("notify.targets[%d]", i)
		if !idRe.MatchString(t.Name) {
			add(key+".name", "%q must be letters, digits, '-', '_' or '.'", t.Name)
		} else if names[t.Name] {
			add(key+".name", "%q is listed twice", t.Name)
		}
		names[t.Name] = true
		if !slices.Contains(NotifyKinds, t.Kind) {
			add(key+".kind", "%q is not one of %s", t.Kind, strings.Join(NotifyKinds, ", "))
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(key+".url", "%q is not an http(s) URL", t.URL)
		}
		if t.Kind == "sms_http" {
			if len(t.To) == 0 {
				add(key+".to", "sms_http needs at least one phone number")
			}
			if t.Body == "" {
				add(key+".body", "sms_http needs a body template, e.g. '{\"to\":\"{{.To}}\",\"text\":\"{{.Text}}\"}'")
			} else if _, err := template.New("body").Funcs(NotifyBodyFuncs).Parse(t.Body); err != nil {
				add(key+".body", "%v", err)
			}
		} else if len(t.To) > 0 || t.Body != "" {
			add(key+".to", "to and body are for kind sms_http")
		}
		if t.RatePerMinute < 0 || t.RatePerMinute > 6000 {
			add(key+".rate_per_minute", "%d is outside 1..6000", t.RatePerMinute)
		}
		if t.Timeout < 0 || t.Timeout.D() > 5*time.Minute {
			add(key+".timeout", "%v is outside 0..5m", t.Timeout.D())
		}
	}
	for i, r := range n.Routes {
		key := fmt.Sprintf("notify.routes[%d]", i)
		if len(r.Targets) == 0 {
			add(key+".targets", "a route needs at least one target")
		}
		for _, t := range r.Targets {
			if !names[t] {
				add(key+".targets", "%q is not a notify target", t)
			}
		}
		for _, p := range r.Priorities {
			if p < 1 || p > 3 {
				add(key+".priorities", "%d is not 1, 2 or 3", p)
			}
		}
		for _, a := range r.Actions {
			if !slices.Contains(NotifyActions, a) {
				add(key+".actions", "%q is not one of %s", a, strings.Join(NotifyActions, ", "))
			}
		}
		for _, t := range r.Types {
			if t == "" || strings.HasPrefix(t, "*") {
				add(key+".types", "%q is not an event type or group like gas.*", t)
			}
		}
	}
	for i, d := range c.Devices {
		for _, t := range d.Notify {
			if !names[t] {
				add(fmt.Sprintf("devices[%d].notify", i), "%q is not a notify target", t)
			}
		}
	}
	return ps
}
