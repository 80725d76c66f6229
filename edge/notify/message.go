package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/smartcommunity/warden/edge/alarm"
	"github.com/smartcommunity/warden/edge/i18n"
)

// Message is one alarm change for one target, as queued and stored.
type Message struct {
	ID       uint64      `json:"id"` // queue key; the webhook's X-Warden-Delivery
	Target   string      `json:"target"`
	AlarmID  string      `json:"alarm_id"`
	Action   string      `json:"action"`
	Priority int         `json:"priority"`
	Title    string      `json:"title"`    // one line
	Markdown string      `json:"markdown"` // WeCom, DingTalk, webhook "text"
	Text     string      `json:"text"`     // plain, for SMS
	Link     string      `json:"link,omitempty"`
	Snapshot string      `json:"snapshot,omitempty"` // media id of the alarm's picture
	Alarm    alarm.Alarm `json:"alarm"`              // without timeline, for the webhook
	Created  time.Time   `json:"created"`            // when the alarm changed

	// in memory only
	stored   bool
	attempts int
	next     time.Time
	step     int // multi-request senders: requests already accepted
}

// forTarget copies a rendered message for one target.
func (m *Message) forTarget(name string, now time.Time) *Message {
	c := *m
	c.Target, c.Created = name, now
	return &c
}

// render writes the change in the notifier's language.
func (n *Notifier) render(a *alarm.Alarm, action string) *Message {
	lang := n.o.Lang
	typ := i18n.TypeName(lang, a.Type)
	prio := i18n.T(lang, fmt.Sprintf("prio.%d", a.Priority))
	where := n.o.Places.Location(lang, a.Location)
	if where == "" {
		where = i18n.T(lang, "loc.none")
	}
	at := a.OpenedAt.Local().Format("2006-01-02 15:04:05")
	title := i18n.T(lang, "notify.title", "prio", prio, "type", typ) + " · " + where
	colon, comma, paren, named := "：", "，", "（%s %d）", "%s（%s）"
	if lang != i18n.ZH {
		colon, comma, paren, named = ": ", ", ", " (%s %d)", "%s (%s)"
	}
	source := a.Source.ID
	if l := n.o.Places.Source(source); l != source { // the id too, for whoever fixes it
		source = fmt.Sprintf(named, l, source)
	}
	if k := i18n.T(lang, "kind."+a.Source.Kind); k != "kind."+a.Source.Kind {
		source = k + " " + source
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n", i18n.T(lang, "notify.title", "prio", prio, "type", typ))
	if action != alarm.ActOpened {
		fmt.Fprintf(&b, "**%s**\n", i18n.T(lang, "notify.action."+action))
	}
	fmt.Fprintf(&b, "> %s"+colon+"**%s**\n", i18n.T(lang, "notify.where"), where)
	fmt.Fprintf(&b, "> %s"+colon+"%s\n", i18n.T(lang, "notify.time"), at)
	fmt.Fprintf(&b, "> %s"+colon+"%s\n", i18n.T(lang, "notify.source"), source)
	fmt.Fprintf(&b, "> %s"+colon+"%s", i18n.T(lang, "notify.state"), i18n.T(lang, "state."+string(a.State)))
	if a.Count > 1 {
		fmt.Fprintf(&b, paren, i18n.T(lang, "notify.count"), a.Count)
	}
	b.WriteString("\n")
	if r := a.Reason; r != nil {
		txt := r.Text
		if r.Code != "" {
			var vars []string
			for k, v := range r.Params {
				vars = append(vars, k, v)
			}
			if s := i18n.T(lang, "reason."+r.Code, vars...); s != "reason."+r.Code {
				txt = s
			}
		}
		fmt.Fprintf(&b, "> %s\n", txt)
	}
	if a.EscalationLevel > 0 && action == alarm.ActEscalated {
		fmt.Fprintf(&b, "> %s\n", i18n.T(lang, "notify.escalated", "n", fmt.Sprint(a.EscalationLevel),
			"after", (n.o.EscalateAfter*time.Duration(a.EscalationLevel)).String()))
	}
	if step := stepOf(a, action); step != nil {
		fmt.Fprintf(&b, "> %s"+colon+"%s", i18n.T(lang, "notify.by"), step.By)
		if step.Note != "" {
			fmt.Fprintf(&b, comma+"%s"+colon+"%s", i18n.T(lang, "notify.note"), step.Note)
		}
		b.WriteString("\n")
	}
	link := ""
	if u := n.o.Config.ConsoleURL; u != "" {
		link = strings.TrimRight(u, "/") + "/#alarm=" + a.ID
		fmt.Fprintf(&b, "\n[%s](%s)\n", i18n.T(lang, "notify.link"), link)
	}
	snap := snapshotOf(a)
	if snap != "" && link != "" {
		fmt.Fprintf(&b, "[%s](%s)\n", i18n.T(lang, "notify.snapshot"), strings.TrimRight(n.o.Config.ConsoleURL, "/")+"/api/v1/media/"+snap)
	}
	text := fmt.Sprintf("%s"+comma+"%s"+comma+"%s", i18n.T(lang, "notify.title", "prio", prio, "type", typ), where, at)
	if action != alarm.ActOpened {
		text = i18n.T(lang, "notify.action."+action) + colon + text
	}
	if link != "" {
		text += " " + link
	}
	head := *a
	head.Timeline = nil
	return &Message{AlarmID: a.ID, Action: action, Priority: a.Priority, Title: title, Markdown: b.String(),
		Text: text, Link: link, Snapshot: snap, Alarm: head}
}

func stepOf(a *alarm.Alarm, action string) *alarm.Step {
	switch action {
	case alarm.ActAcknowledged:
		return a.Acknowledged
	case alarm.ActResolved:
		return a.Resolved
	}
	return nil
}

// snapshotOf is the media id of the alarm's newest picture, or "".
func snapshotOf(a *alarm.Alarm) string {
	for i := len(a.Media) - 1; i >= 0; i-- {
		m := a.Media[i]
		if m.Kind == "snapshot" || m.Kind == "trajectory" || m.Kind == "crop" {
			if id, ok := strings.CutPrefix(m.URL, "/api/v1/media/"); ok {
				return id
			}
		}
	}
	return ""
}
