package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults in one place; configs/warden.yaml repeats them for people.
const (
	DefaultDataDir        = "/var/lib/warden"
	DefaultMQTTListen     = "127.0.0.1:1883"
	DefaultAPIListen      = "127.0.0.1:8080"
	DefaultMaxPayload     = 64 << 10
	DefaultMaxInflight    = 65535
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
	if c.MQTT.Embedded.Persist == nil {
		t := true
		c.MQTT.Embedded.Persist = &t
	}
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "warden-" + c.Gateway.ID
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
	} else if _, _, err := net.SplitHostPort(c.MQTT.Embedded.Listen); err != nil {
		add("mqtt.embedded.listen", "%q is not host:port", c.MQTT.Embedded.Listen)
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
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		add("api.listen", "%q is not host:port", c.API.Listen)
	}
	names := map[string]bool{}
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
	if m := c.Uplink.MQTT; m != nil && m.Broker == "" {
		add("uplink.mqtt.broker", "is required")
	}
	if c.Uplink.Batch < 0 || c.Uplink.Batch > 10000 {
		add("uplink.batch", "%d is outside 1..10000", c.Uplink.Batch)
	}
	if c.Uplink.MaxBacklogBytes < 0 {
		add("uplink.max_backlog_bytes", "must be positive")
	}
	if c.Retention.EventsDays < 0 {
		add("retention.events_days", "must be positive")
	}
	if c.Retention.MediaMaxBytes < 0 {
		add("retention.media_max_bytes", "must be positive")
	}
	return ps
}
