// Package config loads Warden's YAML config: strict decoding (an unknown key
// is an error naming key and line), then defaults, then validation that
// reports every problem at once.
package config

import (
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/event"
)

// Config is the whole file. configs/warden.yaml documents every key.
type Config struct {
	Gateway   Gateway    `yaml:"gateway"`
	Log       Log        `yaml:"log"`
	MQTT      MQTT       `yaml:"mqtt"`
	API       API        `yaml:"api"`
	Devices   []Device   `yaml:"devices"`
	Cameras   []Camera   `yaml:"cameras"`
	Rules     []*Section `yaml:"rules"`
	Alarms    Alarms     `yaml:"alarms"`
	Uplink    Uplink     `yaml:"uplink"`
	Retention Retention  `yaml:"retention"`
	Store     Store      `yaml:"store"`
	Gate      Gate       `yaml:"gate"`
	Liveness  Liveness   `yaml:"liveness"`
	Notify    Notify     `yaml:"notify"`
	Places    Places     `yaml:"places"`
	Live      Live       `yaml:"live"`

	// path is the file the config came from; lines maps key paths to lines.
	path   string
	lines  map[string]int
	values map[[2]int]string // value line and column → key path
	// overlay is the calibration overlay applied, if any
	overlay *overlayFile
}

type Gateway struct {
	ID      string `yaml:"id"`
	Site    string `yaml:"site"`
	DataDir string `yaml:"data_dir"`
}

type Log struct {
	Level string `yaml:"level"` // debug, info, warn, error
}

type MQTT struct {
	Embedded Embedded `yaml:"embedded"`
	// Broker is an external broker URL (tcp://, ssl://, mqtt://, mqtts://);
	// when set the embedded broker is not started.
	Broker   string `yaml:"broker"`
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	TLS      TLS    `yaml:"tls"`
	// MaxPayloadBytes bounds one device message; larger ones are dead-lettered.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// HomeAssistant publishes MQTT discovery for devices and cameras.
	HomeAssistant HomeAssistant `yaml:"homeassistant"`
}

// HomeAssistant is Home Assistant MQTT discovery (docs/homeassistant.md).
type HomeAssistant struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"` // default homeassistant
}

type Embedded struct {
	Listen         string     `yaml:"listen"`
	AllowAnonymous bool       `yaml:"allow_anonymous"`
	Users          []MQTTUser `yaml:"users"`
	ACL            []ACLRule  `yaml:"acl"`
	// MaxInflight raises mochi's per-client QoS 1 window; at the default
	// 8192 mochi drops QoS 1 messages silently (see docs/mqtt.md).
	MaxInflight int `yaml:"max_inflight"`
	// Persist keeps sessions and retained messages in data_dir/broker.db.
	Persist *bool `yaml:"persist"`
	// MaxPacketBytes bounds any MQTT packet, CONNECT included: a bigger
	// announcement closes the connection before anything is allocated.
	MaxPacketBytes int `yaml:"max_packet_bytes"`
	// MaxClients caps connected clients; ConnectTimeout is how long a new
	// connection may take to send its CONNECT.
	MaxClients     int      `yaml:"max_clients"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// CommandUsers may publish to actuator command topics (a local Home
	// Assistant, say). Default none: commands are the gateway's alone.
	CommandUsers []string `yaml:"command_users"`
}

type MQTTUser struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"` // bcrypt, "$2a$…"
}

// ACLRule grants a user (or "*") read and/or write on topic filters.
type ACLRule struct {
	Username string   `yaml:"username"`
	Read     []string `yaml:"read"`
	Write    []string `yaml:"write"`
}

type TLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

type API struct {
	Listen        string    `yaml:"listen"`
	Tokens        []Token   `yaml:"tokens"`
	MetricsPublic bool      `yaml:"metrics_public"`
	MaxBodyBytes  int64     `yaml:"max_body_bytes"`
	TLS           TLS       `yaml:"tls"`
	Users         []APIUser `yaml:"users"`
	SessionTTL    Duration  `yaml:"session_ttl"`
}

// Token is a bearer token; Token is either the plain value or "sha256:<hex>".
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Role  string `yaml:"role"` // guard, platform, admin
}

// APIUser logs in to the console with a bcrypt password.
type APIUser struct {
	Username     string `yaml:"username"`
	PasswordHash string `yaml:"password_hash"`
	Role         string `yaml:"role"`
}

// Device is one MQTT device. Every key not listed here belongs to its
// driver: they land in Extra, and the driver decodes them into its typed
// options from DriverOptions.
type Device struct {
	ID       string         `yaml:"id"`
	Kind     string         `yaml:"kind"`
	Driver   string         `yaml:"driver"`
	Topic    string         `yaml:"topic"`
	Location event.Location `yaml:"location"`
	// Heartbeat overrides liveness.heartbeat for this device; 0s = never
	// time out (edge/liveness).
	Heartbeat *Duration `yaml:"heartbeat"`
	// InactiveAfter and ActiveWindow override liveness.inactive_after and
	// liveness.active_window for a wristband; 0s = no silence alarm.
	InactiveAfter *Duration `yaml:"inactive_after"`
	ActiveWindow  Window    `yaml:"active_window"`
	// Notify names notify targets (a resident's family) that also get this
	// device's life-safety alarms (priority 1), whatever the routes say.
	Notify []string       `yaml:"notify"`
	Extra  map[string]any `yaml:",inline"`

	driverKeys *Section // the driver's keys as read, with their lines
}

// UnmarshalYAML decodes the entry and keeps the driver's keys as a Section.
func (d *Device) UnmarshalYAML(n *yaml.Node) error {
	type plain Device
	if err := n.Decode((*plain)(d)); err != nil {
		return err
	}
	if n.Kind == yaml.MappingNode {
		own := yamlFields(reflect.TypeOf(Device{}))
		keys := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if _, ok := own[n.Content[i].Value]; !ok {
				keys.Content = append(keys.Content, n.Content[i], n.Content[i+1])
			}
		}
		d.driverKeys = &Section{node: keys}
	}
	return nil
}

// DriverOptions are the driver's keys of the entry, for the driver to
// decode into its typed options (Extra as a Section for a device made in
// code).
func (d Device) DriverOptions() *Section {
	if d.driverKeys != nil {
		return d.driverKeys
	}
	return SectionOf(d.Extra)
}

// Camera is one camera; url is rtsp:// or a file path (replay, analyze).
type Camera struct {
	ID          string         `yaml:"id"`
	DisplayName string         `yaml:"display_name"` // what guards read ("北门人脸"); default the id
	URL         string         `yaml:"url"`
	Location    event.Location `yaml:"location"`
	Record      Record         `yaml:"record"`
	Detect      Detect         `yaml:"detect"`
	// OfflineGrace: down this long before camera.offline (default 30s);
	// StallTimeout: no media this long drops the session (default 10s).
	OfflineGrace Duration `yaml:"offline_grace"`
	StallTimeout Duration `yaml:"stall_timeout"`
}

type Record struct {
	URL         string `yaml:"url"` // optional main stream; default the camera url
	PreSeconds  int    `yaml:"pre_seconds"`
	PostSeconds int    `yaml:"post_seconds"`
}

// Detect holds the detectors of a camera; a detector is on when its section
// is present. The sections are decoded by the detectors themselves, into
// their own typed options (Section.Decode).
type Detect struct {
	URL     string   `yaml:"url"` // optional sub-stream for analysis
	FPS     float64  `yaml:"fps"`
	Face    *Section `yaml:"face"`
	Throw   *Section `yaml:"throw"`
	Motion  *Section `yaml:"motion"`
	Regions []Region `yaml:"zones"`
}

// Section is the options of the detector called name (nil: not on).
func (d Detect) Section(name string) *Section {
	switch name {
	case "face":
		return d.Face
	case "throw":
		return d.Throw
	case "motion":
		return d.Motion
	}
	return nil
}

// Region is a named polygon in image pixels (detect.zones in the config,
// the name INTERFACES.md gives it); a Mask region excludes motion. In the
// code "zone" means only a location zone (location.zone, and the arming
// schedules of alarms.zones, which name location zones).
type Region struct {
	Name   string   `yaml:"name"`
	Points [][2]int `yaml:"points"`
	Mask   bool     `yaml:"mask"`
}

type Alarms struct {
	// EscalateAfter re-notifies an alarm not acknowledged in time and raises
	// its escalation level (within its priority).
	EscalateAfter Duration `yaml:"escalate_after"`
	// Priorities overrides the priority of alarm types: 1 life safety, 2
	// security, 3 routine. Keys are types ("gas.leak") or groups ("gate.*").
	Priorities map[string]int `yaml:"priorities"`
	// Duty is the guards' roster, in order: an assignment not accepted
	// within AcceptWithin (default escalate_after) passes to the next.
	Duty         []string `yaml:"duty"`
	AcceptWithin Duration `yaml:"accept_within"`
	// Zones are perimeter zones with arm schedules, checked by edge/zones.
	Zones []ArmZone `yaml:"zones"`
}

// ArmZone is a perimeter zone: an intrusion is critical while it is armed
// and info while it is disarmed (edge/zones).
type ArmZone struct {
	Name        string      `yaml:"name"`
	Armed       []ArmWindow `yaml:"armed"`
	AlwaysArmed bool        `yaml:"always_armed"`
}

// ArmWindow is a time-of-day window (box local time) on days of the week;
// from after to runs overnight.
type ArmWindow struct {
	Days []string `yaml:"days"`
	From string   `yaml:"from"`
	To   string   `yaml:"to"`
}

// Places are the words guards read for building and zone ids, in the
// console, in alarm titles and in pushed messages.
type Places struct {
	Buildings map[string]string `yaml:"buildings"` // "3": "3 号楼（东区）"
	Zones     map[string]string `yaml:"zones"`     // "north-gate": "北门岗"
}

// Notify pushes alarms to people who are not at the console (edge/notify).
type Notify struct {
	// ConsoleURL is how phones reach the console, for the link in each
	// message ("http://192.168.10.2:8080/"); empty: no link.
	ConsoleURL string         `yaml:"console_url"`
	Language   string         `yaml:"language"` // of the messages: zh-CN (default) or en
	Targets    []NotifyTarget `yaml:"targets"`
	Routes     []NotifyRoute  `yaml:"routes"`
}

// NotifyTarget is one place messages go.
type NotifyTarget struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // wecom, dingtalk, webhook, sms_http
	URL  string `yaml:"url"`
	// Secret: dingtalk's signing secret (SEC…), or the webhook's HMAC-SHA256
	// key (X-Warden-Signature).
	Secret   string   `yaml:"secret"`
	Mentions []string `yaml:"mentions"` // wecom, dingtalk: mobile numbers to @
	// To and Body: sms_http sends one request per number in To, with Body
	// (a Go text/template over .To, .Text and .Alarm) as the request body.
	To            []string          `yaml:"to"`
	Body          string            `yaml:"body"`
	ContentType   string            `yaml:"content_type"` // sms_http (application/json)
	Headers       map[string]string `yaml:"headers"`
	RatePerMinute int               `yaml:"rate_per_minute"` // default 20; life-safety alarms wait, others are skipped
	Timeout       Duration          `yaml:"timeout"`         // per request (10s)
}

// NotifyRoute sends the alarms it matches to its targets. Empty lists match
// everything.
type NotifyRoute struct {
	Types      []string `yaml:"types"`      // "gas.leak" or "gas.*"
	Priorities []int    `yaml:"priorities"` // 1, 2, 3
	Buildings  []string `yaml:"buildings"`
	Zones      []string `yaml:"zones"`
	Hours      Window   `yaml:"hours"`   // local time, e.g. "22:00-06:00"
	Actions    []string `yaml:"actions"` // opened, escalated (default both), acknowledged, resolved
	Targets    []string `yaml:"targets"`
}

type Uplink struct {
	HTTP            *UplinkHTTP `yaml:"http"`
	MQTT            *UplinkMQTT `yaml:"mqtt"`
	GAT1400         *GAT1400    `yaml:"gat1400"`
	Batch           int         `yaml:"batch"`
	Linger          Duration    `yaml:"linger"`
	MaxBacklogBytes int64       `yaml:"max_backlog_bytes"`
	MinBackoff      Duration    `yaml:"min_backoff"` // first retry delay (default 1s)
	MaxBackoff      Duration    `yaml:"max_backoff"` // retry delay cap (default 60s)
}

// GAT1400 is a GA/T 1400 view library (视图库) that takes faces and
// vehicles (docs/gat1400.md).
type GAT1400 struct {
	URL       string   `yaml:"url"`
	DeviceID  string   `yaml:"device_id"` // 20 digits
	Username  string   `yaml:"username"`
	Password  string   `yaml:"password"`
	Keepalive Duration `yaml:"keepalive"` // default 50s
	Timeout   Duration `yaml:"timeout"`   // per request, default 30s
	TLS       TLS      `yaml:"tls"`
}

type UplinkHTTP struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Timeout Duration          `yaml:"timeout"`
	TLS     TLS               `yaml:"tls"`
	// Media uploads snapshots and clips named by events (default true) with
	// PUT MediaURL/<id>; MediaURL defaults to URL + "/media".
	Media    *bool  `yaml:"media"`
	MediaURL string `yaml:"media_url"`
}

type UplinkMQTT struct {
	Broker   string `yaml:"broker"`
	Topic    string `yaml:"topic"`
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	TLS      TLS    `yaml:"tls"`
}

type Retention struct {
	EventsDays      int   `yaml:"events_days"`
	MediaMaxBytes   int64 `yaml:"media_max_bytes"`
	EventsMaxBytes  int64 `yaml:"events_max_bytes"`
	UnknownFaceDays int   `yaml:"unknown_face_days"`
}

type Store struct {
	OpenTimeout Duration `yaml:"open_timeout"`
}

// Gate holds the barrier gates' allow lists (edge/gate, docs/gate.md).
type Gate struct {
	// Residents are plates allowed at every gate at any hour (unless
	// group_hours.resident says otherwise).
	Residents []string    `yaml:"residents"`
	Allow     []GateAllow `yaml:"allow"`
	// Blocked plates are denied everywhere, with a critical gate.denied.
	Blocked []string `yaml:"blocked"`
	// GroupHours is the time-of-day rule of a group, e.g. delivery: 07:00-20:00.
	GroupHours map[string]Window `yaml:"group_hours"`
	// PlatesFile holds more residents, allow and blocked entries (same keys).
	PlatesFile string `yaml:"plates_file"`
	// Repeat: the same plate at the same gate within this is one decision.
	Repeat Duration `yaml:"repeat"`
	// OpenExits lets every vehicle leaving (direction out) through, except
	// blocked ones. Default true.
	OpenExits *bool `yaml:"open_exits"`
}

// GateAllow is one allowed plate that is not a plain resident.
type GateAllow struct {
	Plate string   `yaml:"plate"`
	Group string   `yaml:"group"` // default "allowed"; names its group_hours
	Hours Window   `yaml:"hours"` // overrides the group's hours
	Gates []string `yaml:"gates"` // default every gate
	Note  string   `yaml:"note"`
}

// Liveness holds the device heartbeat and wristband silence rules
// (edge/liveness, docs/liveness.md).
type Liveness struct {
	// Heartbeat per device kind: a device silent for longer is offline.
	// Kinds not listed keep the built-in default; 0s turns it off.
	Heartbeat map[string]Duration `yaml:"heartbeat"`
	// A wristband silent for inactive_after inside active_window raises
	// wristband.inactive (critical). Defaults 4h and 07:00-21:00.
	InactiveAfter Duration `yaml:"inactive_after"`
	ActiveWindow  Window   `yaml:"active_window"`
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

// Live is live view in the console (edge/liveview).
type Live struct {
	// MaxViewers caps the WebRTC viewers of one camera (default 4); each
	// costs uplink bandwidth, not decoding.
	MaxViewers int `yaml:"max_viewers"`
}
