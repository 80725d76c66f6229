// Package alarm turns events into alarms that guards handle: one alarm per
// ongoing condition (a dedup key), the states open → acknowledged → resolved
// with actor, time and note, escalation when nobody acknowledges in time, and
// a persisted timeline. Every state change is kept in the gateway's bbolt
// file, recorded as an alarm.* event (so the uplink carries the closed loop to
// the platform) and handed to Notify callbacks (MQTT, SSE).
package alarm

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/i18n"
)

// State of an alarm.
type State string

const (
	Open         State = "open"
	Acknowledged State = "acknowledged"
	Resolved     State = "resolved"
)

// Valid reports whether s is one of the three states.
func (s State) Valid() bool { return s == Open || s == Acknowledged || s == Resolved }

// Timeline actions.
const (
	ActOpened       = "opened"
	ActRepeated     = "repeated"
	ActAcknowledged = "acknowledged"
	ActResolved     = "resolved"
	ActEscalated    = "escalated"
	ActCleared      = "cleared"
	ActAssigned     = "assigned"
	ActAccepted     = "accepted"
	ActOnScene      = "on_scene"
	ActMedia        = "media" // evidence added after the alarm opened (a clip)
)

// Outcomes a guard records when resolving: what the alarm turned out to be.
const (
	OutcomeReal      = "real"
	OutcomeFalse     = "false_alarm"
	OutcomeTest      = "test"
	OutcomeDuplicate = "duplicate"
)

// Outcomes lists the valid outcomes.
var Outcomes = []string{OutcomeReal, OutcomeFalse, OutcomeTest, OutcomeDuplicate}

// Errors callers test with errors.Is; the API maps them to 404, 409 and 400.
var (
	ErrNotFound     = errors.New("alarm not found")
	ErrConflict     = errors.New("alarm is not in a state that allows this")
	ErrNoteRequired = errors.New("a note is required")
	ErrBadNote      = errors.New("bad note") // too long or not UTF-8
	ErrBadRequest   = errors.New("bad request")
	ErrNotAssignee  = errors.New("only the assigned guard may do this")
)

// Step is who moved an alarm to a state, when, and what they said.
type Step struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Note string    `json:"note"`
}

// Assignment is who an alarm is assigned to, by whom, and when it was
// accepted.
type Assignment struct {
	To         string     `json:"to"`
	By         string     `json:"by"`
	At         time.Time  `json:"at"`
	Note       string     `json:"note,omitempty"`
	AcceptedAt *time.Time `json:"accepted_at"`
}

// Entry is one line of an alarm's timeline.
type Entry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	By     string    `json:"by,omitempty"`
	Note   string    `json:"note,omitempty"`
	// Code and Params say what the gateway wrote in Note, for clients to
	// show in their own language ("escalated.unacked" {after, level}).
	Code    string            `json:"code,omitempty"`
	Params  map[string]string `json:"params,omitempty"`
	EventID string            `json:"event_id,omitempty"`
	// Repeats counts the occurrences a coalesced "repeated" entry stands
	// for; At and EventID are those of the latest.
	Repeats int `json:"repeats,omitempty"`
}

// Alarm is one ongoing condition. Rev increases with every change of any
// alarm, so a client applying live messages keeps the highest Rev per ID.
type Alarm struct {
	ID       string         `json:"id"`
	Rev      uint64         `json:"rev"`
	Key      string         `json:"key"`
	Type     string         `json:"type"`
	Severity event.Severity `json:"severity"`
	Priority int            `json:"priority"` // 1 life safety, 2 security, 3 routine
	State    State          `json:"state"`
	Title    string         `json:"title"`
	Location event.Location `json:"location"`
	// Reason is why the gateway raised one of its own alarms (system.*):
	// a code for clients to word, its parameters, and the English detail.
	Reason *Reason `json:"reason,omitempty"`
	// Floor is a throw's floor of origin (0: none), so clients can show it
	// in their own language.
	Floor           int           `json:"floor,omitempty"`
	Source          event.Source  `json:"source"`
	FirstEventID    string        `json:"first_event_id"`
	LastEventID     string        `json:"last_event_id"`
	LastSeq         uint64        `json:"last_seq"`
	Count           int           `json:"count"`
	OpenedAt        time.Time     `json:"opened_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	Acknowledged    *Step         `json:"acknowledged"`
	Assigned        *Assignment   `json:"assigned"`
	OnScene         *Step         `json:"on_scene"`
	Resolved        *Step         `json:"resolved"`
	Outcome         string        `json:"outcome,omitempty"` // set on resolve: real, false_alarm, test, duplicate
	ClearedAt       *time.Time    `json:"cleared_at"`        // the condition reported itself gone; a person still resolves
	Escalated       bool          `json:"escalated"`
	EscalationLevel int           `json:"escalation_level"`
	EscalatedAt     *time.Time    `json:"escalated_at"`
	Media           []event.Media `json:"media"`
	Timeline        []Entry       `json:"timeline,omitempty"`
	// Unstored: opened from memory because its event could not be stored
	// (ShowUnstored); false once it is.
	Unstored bool `json:"unstored,omitempty"`
}

func (a *Alarm) clone() *Alarm {
	c := a.cloneHead()
	c.Timeline = append([]Entry(nil), a.Timeline...)
	return c
}

// cloneHead is clone without the timeline.
func (a *Alarm) cloneHead() *Alarm {
	c := *a
	c.Media = append([]event.Media{}, a.Media...)
	c.Timeline = nil
	if a.Acknowledged != nil {
		s := *a.Acknowledged
		c.Acknowledged = &s
	}
	if a.Resolved != nil {
		s := *a.Resolved
		c.Resolved = &s
	}
	if a.OnScene != nil {
		s := *a.OnScene
		c.OnScene = &s
	}
	if a.Assigned != nil {
		s := *a.Assigned
		if s.AcceptedAt != nil {
			t := *s.AcceptedAt
			s.AcceptedAt = &t
		}
		c.Assigned = &s
	}
	if a.ClearedAt != nil {
		t := *a.ClearedAt
		c.ClearedAt = &t
	}
	if a.EscalatedAt != nil {
		t := *a.EscalatedAt
		c.EscalatedAt = &t
	}
	return &c
}

// Change is one alarm change handed to Notify callbacks, in change order.
type Change struct {
	Action string // a timeline action: opened, repeated (only when severity rose), acknowledged, resolved, escalated, cleared
	Alarm  Alarm  // the alarm after the change, without its timeline
	// Event is the alarm.* event recorded for the change (Seq set once
	// committed), or nil for changes that have no event type (cleared,
	// repeated).
	Event *event.Event
}

// Payload is the JSON published on warden/<gw>/alarms and sent over SSE
// (event: alarm): the alarm without its timeline plus "action".
func (c Change) Payload() []byte {
	b, _ := marshalPayload(c)
	return b
}

// Policy decides which events become alarms and under which key.
type Policy struct {
	// WarningTypes are types whose warning events raise alarms; critical
	// events always do and info events never do (use Raise). A trailing
	// ".*" matches a group, e.g. "wristband.*".
	WarningTypes []string
	// Clears maps a clearing type to the type it clears, e.g.
	// gas.cleared → gas.leak.
	Clears map[string]string
}

// DefaultPolicy is the policy of docs/alarms.md.
func DefaultPolicy() Policy {
	return Policy{
		WarningTypes: []string{
			event.GasLeak, event.ValveFault, "wristband.*", "perimeter.*", event.GateDenied,
			event.FaceWatchlist, event.FaceUnknown, event.ThrowDetected, event.CameraOffline,
			event.DeviceOffline, event.DeviceTamper, event.SystemStorage, event.SystemClock,
		},
		Clears: map[string]string{
			event.GasCleared:   event.GasLeak,
			event.CameraOnline: event.CameraOffline,
			event.DeviceOnline: event.DeviceOffline,
		},
	}
}

// raises reports whether e opens or updates an alarm under p.
func (p Policy) raises(e *event.Event) bool {
	if e.Group() == "alarm" {
		return false
	}
	switch e.Severity {
	case event.Critical:
		return true
	case event.Warning:
		for _, t := range p.WarningTypes {
			if t == e.Type {
				return true
			}
			if g, ok := strings.CutSuffix(t, ".*"); ok && g == e.Group() {
				return true
			}
		}
	}
	return false
}

// Key is the default dedup key of an event: its type and source id, e.g.
// "gas.leak/gas-3-2-201".
func Key(e *event.Event) string { return e.Type + "/" + e.Source.ID }

// Reason of a system.* alarm.
type Reason struct {
	Code   string            `json:"code,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	Text   string            `json:"text,omitempty"`
}

// reasonOf reads data.reason_code and data.reason; params are the event's
// plain values that a message may name (target, status, part, component,
// skew_seconds).
func reasonOf(e *event.Event) *Reason {
	code, _ := e.Data["reason_code"].(string)
	text, _ := e.Data["reason"].(string)
	if code == "" && text == "" {
		return nil
	}
	r := &Reason{Code: code, Text: text}
	for _, k := range []string{"target", "status", "part", "component", "skew_seconds"} {
		if v, ok := e.Data[k]; ok {
			if r.Params == nil {
				r.Params = map[string]string{}
			}
			r.Params[k] = fmt.Sprint(v)
		}
	}
	return r
}

// floorOf is a throw's floor of origin, or 0.
func floorOf(e *event.Event) int {
	if e.Type != event.ThrowDetected {
		return 0
	}
	o, _ := e.Data["origin"].(map[string]any)
	switch f := o["floor"].(type) {
	case int:
		return f
	case float64:
		return int(f)
	}
	return 0
}

// title is a short line for lists, pushes and the MQTT/SSE payload, in
// zh-CN: what, where, and for a throw the floor and the time, e.g.
// "高空抛物 · 3 号楼 第 7 层 · 22:14:03" or "燃气泄漏 · 3 号楼 2 单元 201 室（gas-3-2-201）".
func title(e *event.Event, places i18n.Places) string {
	return titleIn(i18n.ZH, e.Type, e.Location, floorOf(e), e.Source.ID, e.Time, places)
}

// TitleIn is a's title in lang (the time of a throw is when it opened),
// for clients that ask for another language (Accept-Language).
func TitleIn(lang string, a *Alarm, places i18n.Places) string {
	return titleIn(lang, a.Type, a.Location, a.Floor, a.Source.ID, a.OpenedAt, places)
}

func titleIn(lang, typ string, loc event.Location, floor int, source string, at time.Time, places i18n.Places) string {
	t := i18n.TypeName(lang, typ)
	source = places.Source(source)
	where := places.Location(lang, loc)
	if typ == event.ThrowDetected {
		if floor != 0 {
			where = strings.TrimSpace(where + " " + i18n.T(lang, "alarm.floor", "n", fmt.Sprint(floor)))
		}
		if where == "" {
			where = source
		}
		return t + " · " + where + " · " + at.Local().Format("15:04:05")
	}
	switch {
	case where == "":
		where = source
	case source != "" && lang == i18n.ZH:
		where += "（" + source + "）"
	case source != "":
		where += " (" + source + ")"
	}
	if where == "" {
		return t
	}
	return t + " · " + where
}

// validPattern rejects policy entries that could never match.
func validPattern(t string) bool {
	if g, ok := strings.CutSuffix(t, ".*"); ok {
		return g != "" && !strings.ContainsAny(g, ".*")
	}
	return event.Known(t)
}
